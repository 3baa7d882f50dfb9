"""Profiles: which backend each layer uses, decided once from what this machine has.

    MISC_PROFILE = offline | full | auto      (default: auto on a Space, offline elsewhere)

    offline  today's behaviour: manual description, CLIP Surgery maps only if their
             weights load, decoder "auto" (diffusion only when its weights are already
             cached, else Real-ESRGAN restoration)
    full     MISC as published: a VLM describes (transformers, or the OpenAI-compatible
             API when a key or server is set), CLIP Surgery maps (ViT-B-16 / openai), the
             map-guided diffusion decoder (SD 1.5 + ControlNet tile, regional mode);
             missing weights are downloaded from the hub on first use, then cached
    auto     full when a GPU (CUDA, or ZeroGPU) and every full-profile model (in the cache,
             or from the hub) are there; otherwise offline, saying why for each layer

    facts (probe: GPU? ZeroGPU? hub? which repos cached?) ──resolve(requested)──▶ Plan
        Plan.profile ∈ {full, offline}; Plan.layers[describer|maps|decoder] = LayerPlan

This module is pure logic plus cheap probes (no model is loaded, no UI): the app shows
the plan (demo/backends.py), the CLI takes ``--profile``, the Space's README lists
``FULL_MODELS`` for ``preload_from_hub``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .hub import GB, ModelFiles, hub_offline

ENV = "MISC_PROFILE"
PROFILES = ("auto", "full", "offline")
LAYERS = ("describer", "maps", "decoder")

DEFAULT_VLM = "Qwen/Qwen2.5-VL-3B-Instruct"
DEFAULT_CLIP = ("ViT-B-16", "openai")  # MISC's choice; open_clip reads it from OPENCLIP_REPO
OPENCLIP_REPO = "timm/vit_base_patch16_clip_224.openai"
DEFAULT_SD = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CONTROLNET = "lllyasviel/control_v11f1e_sd15_tile"

_SD_PARTS = ("unet", "vae", "text_encoder")
SD_FP16_FILES = {
    "unet": "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae": "vae/diffusion_pytorch_model.fp16.safetensors",
    "text_encoder": "text_encoder/model.fp16.safetensors",
}
CONTROLNET_FP16_FILE = "diffusion_pytorch_model.fp16.safetensors"

# The files each default repository is read from, and what they cost. Parameter counts
# were computed here from the architectures (bench/random_models.py, codec/decode/tiny.py);
# bytes = parameters × bytes per parameter of the stored dtype. docs/SPACE.md has the table.
FULL_MODELS: dict[str, ModelFiles] = {
    "vlm": ModelFiles(
        DEFAULT_VLM,
        probes=("config.json",),
        weights=(("model.safetensors.index.json", "model.safetensors"),),
        patterns=("*.json", "*.jinja", "*.txt"),
        download_bytes=int(3_754_622_976 * 2),
        memory_bytes=int(3_754_622_976 * 2),
        what="describer (transformers VLM)",
        sizes_note="3.75 G parameters, bf16 as published",
    ),
    "clip": ModelFiles(
        OPENCLIP_REPO,
        weights=(("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),),
        download_bytes=int(149_620_737 * 4),
        memory_bytes=int(149_620_737 * 4),
        what="CLIP Surgery maps (open_clip ViT-B-16 / openai)",
        sizes_note="149.6 M parameters, fp32 (the file's dtype is an estimate)",
    ),
    "sd": ModelFiles(
        DEFAULT_SD,
        probes=("model_index.json", *(f"{p}/config.json" for p in _SD_PARTS)),
        weights=tuple((SD_FP16_FILES[p], SD_FP16_FILES[p].replace(".fp16", "")) for p in _SD_PARTS),
        patterns=("model_index.json", "*/config.json", "tokenizer/*", "scheduler/*"),
        download_bytes=int((859_520_964 + 83_653_863 + 123_060_480) * 2),
        memory_bytes=int((859_520_964 + 83_653_863 + 123_060_480) * 2),
        what="diffusion decoder: SD 1.5 UNet, VAE, text encoder (fp16 variant files)",
        preload=(
            "model_index.json",
            *(f"{p}/config.json" for p in _SD_PARTS),
            *(SD_FP16_FILES[p] for p in _SD_PARTS),
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer_config.json",
            "tokenizer/vocab.json",
            "scheduler/scheduler_config.json",
        ),
        sizes_note="1.07 G parameters, fp16 variant",
    ),
    "controlnet": ModelFiles(
        DEFAULT_CONTROLNET,
        probes=("config.json",),
        weights=((CONTROLNET_FP16_FILE, "diffusion_pytorch_model.safetensors"),),
        download_bytes=int(361_279_120 * 4),
        memory_bytes=int(361_279_120 * 2),
        what="diffusion decoder: ControlNet v1.1 tile",
        preload=("config.json", "diffusion_pytorch_model.safetensors"),
        sizes_note="361 M parameters; fp32 file (0.72 GB if the repository has an fp16 one), fp16 in memory",
    ),
}
MODEL_LAYER = {"vlm": "describer", "clip": "maps", "sd": "decoder", "controlnet": "decoder"}


def requested_profile(environ: Mapping[str, str] | None = None) -> str:
    """MISC_PROFILE, else ``auto`` on a Hugging Face Space (SPACE_ID set), else ``offline``."""
    environ = os.environ if environ is None else environ
    value = (environ.get(ENV) or "").strip().lower()
    if not value:
        return "auto" if environ.get("SPACE_ID") else "offline"
    if value not in PROFILES:
        raise ValueError(f"{ENV}={value!r} is not a profile; use one of {', '.join(PROFILES)}")
    return value


def full_models(environ: Mapping[str, str] | None = None) -> dict[str, ModelFiles]:
    """FULL_MODELS with the user's overrides (MISC_VLM_HF_MODEL, MISC_SD_MODEL, ...).

    An overridden repository's file list is unknown, so only its config is probed and its
    loader downloads it; the defaults are fetched file by file with progress.
    """
    environ = os.environ if environ is None else environ
    out = dict(FULL_MODELS)
    overrides = {
        "vlm": ("MISC_VLM_HF_MODEL", "config.json"),
        "sd": ("MISC_SD_MODEL", "model_index.json"),
        "controlnet": ("MISC_CONTROLNET_MODEL", "config.json"),
    }
    for key, (var, probe) in overrides.items():
        repo = environ.get(var)
        if repo and repo != out[key].repo_id:
            out[key] = ModelFiles(
                repo, probes=(probe,), what=out[key].what, sizes_note="user's model: sizes unknown"
            )
    if environ.get("MISC_SURGERY_PRETRAINED") or environ.get("MISC_SURGERY_MODEL"):
        model = environ.get("MISC_SURGERY_MODEL") or DEFAULT_CLIP[0]
        tag = environ.get("MISC_SURGERY_PRETRAINED") or DEFAULT_CLIP[1]
        if (model, tag) != DEFAULT_CLIP:
            out["clip"] = ModelFiles(
                f"open_clip:{model}/{tag}",
                what=out["clip"].what,
                sizes_note="user's model: sizes unknown",
                extra={"open_clip": (model, tag)},
            )
    return out


@dataclass(frozen=True)
class Facts:
    """What the profile depends on, probed cheaply (or given by a test)."""

    cuda: bool = False
    zerogpu: bool = False
    gpu_name: str = ""
    hub: bool = False  # the hub can be reached (not switched off, and answered a probe)
    hub_why: str = ""
    cached: Mapping[str, bool] = field(default_factory=dict)  # FULL_MODELS key → all files here
    random_weights: Mapping[str, bool] = field(default_factory=dict)  # a test's random model in the cache
    openai: bool = False  # an OpenAI-compatible describer is configured (key or local server)
    openai_model: str = ""

    @property
    def gpu(self) -> bool:
        return self.cuda or self.zerogpu

    @property
    def gpu_text(self) -> str:
        if self.zerogpu:
            return "ZeroGPU (a GPU is lent to each decorated call)"
        if self.cuda:
            return f"CUDA ({self.gpu_name})" if self.gpu_name else "CUDA"
        return "no GPU (CUDA not available, not on ZeroGPU)"


@dataclass(frozen=True)
class LayerPlan:
    layer: str  # describer | maps | decoder
    backend: str  # describer: hf | openai | manual; maps: clip | painted-or-clip; decoder: diffusion | auto
    model: str  # hub id or spec; "" when none
    full: bool
    reason: str


@dataclass(frozen=True)
class Plan:
    requested: str
    profile: str  # full | offline
    reason: str
    layers: dict[str, LayerPlan]
    downloads: dict[str, int]  # repo id → bytes still to download (full profile)
    random_weights: tuple[str, ...] = ()  # repo ids whose cached copy is a test's random model
    random_layers: tuple[str, ...] = ()  # layers (full profile) whose cached model is a test's random one

    @property
    def download_bytes(self) -> int:
        return sum(self.downloads.values())

    def summary(self) -> str:
        head = f"profile {self.profile}" + (
            f" (requested {self.requested})" if self.requested != self.profile else ""
        )
        return f"{head}: {self.reason}"


def zerogpu_env(environ: Mapping[str, str] | None = None) -> bool:
    """On a ZeroGPU Space (the ``spaces`` package's own switch)."""
    environ = os.environ if environ is None else environ
    return (environ.get("SPACES_ZERO_GPU") or "").strip().lower() in ("1", "t", "true")


def probe(
    check_hub: bool = True, models: Mapping[str, ModelFiles] | None = None, timeout: float = 3.0
) -> Facts:
    """Look at this machine: GPU, ZeroGPU, hub reachability, cached repositories. Loads no model.

    On ZeroGPU CUDA is never touched here (the ``spaces`` package must see it
    uninitialised); elsewhere ``torch.cuda.is_available`` decides.
    """
    from .describe.openai_api import DEFAULT_BASE_URL, resolve_settings

    models = full_models() if models is None else models
    zerogpu = zerogpu_env()
    cuda, name = False, ""
    if not zerogpu:
        try:
            import torch

            cuda = bool(torch.cuda.is_available())
            name = torch.cuda.get_device_name(0) if cuda else ""
        except Exception:
            cuda = False
    if hub_offline():
        hub, why = False, "the hub is switched off (HF_HUB_OFFLINE=1)"
    elif not check_hub:
        hub, why = False, "not checked"
    else:
        hub, why = _hub_reachable(timeout)
    cached = {k: m.cached() for k, m in models.items()}
    random = {k: m.random_weights() for k, m in models.items() if m.known}
    model, base_url, key = resolve_settings()
    openai = bool(key) or base_url != DEFAULT_BASE_URL
    return Facts(cuda, zerogpu, name, hub, why, cached, random, openai, model if openai else "")


def _hub_reachable(timeout: float) -> tuple[bool, str]:
    import urllib.error
    import urllib.request

    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    try:
        with urllib.request.urlopen(f"{endpoint}/api/models/{DEFAULT_SD}", timeout=timeout) as r:
            return (r.status < 500), f"{endpoint} answered"
    except urllib.error.HTTPError as exc:  # it answered: reachable
        return exc.code < 500, f"{endpoint} answered {exc.code}"
    except Exception as exc:
        return False, f"{endpoint} cannot be reached ({type(exc).__name__})"


def resolve(requested: str, facts: Facts, models: Mapping[str, ModelFiles] | None = None) -> Plan:
    """The plan for ``requested`` (auto | full | offline) on a machine described by ``facts``."""
    if requested not in PROFILES:
        raise ValueError(f"unknown profile {requested!r}; use one of {', '.join(PROFILES)}")
    models = FULL_MODELS if models is None else models
    random = tuple(models[k].repo_id for k, r in facts.random_weights.items() if r and k in models)
    random_layers = tuple(
        dict.fromkeys(MODEL_LAYER[k] for k, r in facts.random_weights.items() if r and k in models)
    )
    if requested == "offline":
        return Plan(requested, "offline", "requested", _offline_layers("requested"), {}, random)
    if requested == "full":
        return Plan(
            requested,
            "full",
            "requested",
            _full_layers(facts, models, "requested"),
            _downloads(facts, models),
            random,
            random_layers,
        )

    # auto: full needs a GPU, and every model in the cache or from the hub
    missing = [k for k in models if not facts.cached.get(k) and not facts.hub]
    if facts.gpu and not missing:
        src = (
            "weights cached"
            if all(facts.cached.get(k) for k in models)
            else f"hub reachable ({facts.hub_why})"
        )
        reason = f"{facts.gpu_text}; {src}"
        return Plan(
            requested,
            "full",
            reason,
            _full_layers(facts, models, f"auto: {reason}"),
            _downloads(facts, models),
            random,
            random_layers,
        )
    why = {}
    for layer in LAYERS:
        needs = [k for k, lay in MODEL_LAYER.items() if lay == layer and k in missing]
        parts = [] if facts.gpu else [facts.gpu_text]
        if needs:
            parts.append(
                f"{', '.join(models[k].repo_id for k in needs)} not cached and the hub unreachable ({facts.hub_why})"
            )
        why[layer] = "; ".join(parts) or "other layers cannot run the full profile"
    reason = "; ".join(dict.fromkeys(why.values()))
    layers = _offline_layers("auto")
    layers = {
        k: LayerPlan(v.layer, v.backend, v.model, v.full, f"auto → offline: {why[k]}. {v.reason}")
        for k, v in layers.items()
    }
    if facts.openai:  # an API needs no GPU: use it when configured
        layers["describer"] = LayerPlan(
            "describer",
            "openai",
            facts.openai_model,
            True,
            "auto: an OpenAI-compatible server is configured (needs no local GPU)",
        )
    return Plan(requested, "offline", reason, layers, {}, random)


def _downloads(facts: Facts, models: Mapping[str, ModelFiles]) -> dict[str, int]:
    return {m.repo_id: m.download_bytes for k, m in models.items() if not facts.cached.get(k)}


def _full_layers(facts: Facts, models: Mapping[str, ModelFiles], why: str) -> dict[str, LayerPlan]:
    def where(key: str) -> str:
        m = models[key]
        if facts.cached.get(key):
            return "in the cache"
        size = f" ~{m.download_bytes / GB:.1f} GB" if m.download_bytes else ""
        return (
            f"downloads{size} on first use" if facts.hub else f"not cached, hub unreachable ({facts.hub_why})"
        )

    gpu = "" if facts.gpu else f"; {facts.gpu_text}: slow on CPU"
    if facts.openai:
        describer = LayerPlan(
            "describer",
            "openai",
            facts.openai_model,
            True,
            f"{why}: OpenAI-compatible server configured ({facts.openai_model})",
        )
    else:
        describer = LayerPlan("describer", "hf", models["vlm"].repo_id, True, f"{why}: {where('vlm')}{gpu}")
    sd, cn = models["sd"].repo_id, models["controlnet"].repo_id
    return {
        "describer": describer,
        "maps": LayerPlan("maps", "clip", _clip_name(models), True, f"{why}: {where('clip')}"),
        "decoder": LayerPlan(
            "decoder",
            "diffusion",
            f"{sd} + {cn}",
            True,
            f"{why}: regional mode; {sd}: {where('sd')}; {cn}: {where('controlnet')}{gpu}",
        ),
    }


def _clip_name(models: Mapping[str, ModelFiles]) -> str:
    model, tag = models["clip"].extra.get("open_clip", DEFAULT_CLIP)
    return f"{model}/{tag}"


def _offline_layers(why: str) -> dict[str, LayerPlan]:
    return {
        "describer": LayerPlan(
            "describer",
            "manual",
            "",
            False,
            "type or edit the description (a VLM in the Describer list if one is configured)",
        ),
        "maps": LayerPlan(
            "maps",
            "painted",
            "",
            False,
            "paint the maps; CLIP Surgery too if its weights load (checked in the background)",
        ),
        "decoder": LayerPlan(
            "decoder",
            "auto",
            "",
            False,
            "diffusion only if its weights are already cached, else Real-ESRGAN restoration",
        ),
    }


def clip_spec(models: Mapping[str, ModelFiles] | None = None) -> tuple[str, str]:
    """(open_clip model, pretrained tag) the full profile's maps use."""
    models = full_models() if models is None else models
    return models["clip"].extra.get("open_clip", DEFAULT_CLIP)
