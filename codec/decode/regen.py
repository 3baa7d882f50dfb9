"""Regeneration: decode an AI image by running its generator again, checked against the pixel layer.

    RECIPE (model, seed, steps, CFG, sampler, size) + TEXT paragraph (= the prompt)
      ──ModelMap: model hash / name ─▶ from_pretrained id or local dir
      ──diffusers text-to-image pipeline, same seed and settings──▶ regenerated picture
      ──shrink to the pixel layer's size, PSNR against it (codec.aigi.check)──┐
                               ≥ the file's check − margin: the regenerated picture
                               below it, or no mapping / no weights: the fallback decoder

The same weights, sampler and seed on the same kind of device give the same picture, and
then the file costs its recipe plus a small pixel layer. Another model version, another
GPU, a sampler diffusers does not have or prompt syntax it does not parse (A1111's
``(word:1.2)`` emphasis, LoRA tags) give another picture: the check catches that and the
fallback decoder (restoration, diffusion, ...) decodes the file as any other. The result's
``metadata["regeneration"]`` says which path was taken and why.

Model map: ``MISC_REGEN_MODELS`` = a JSON object (inline, or the path of a JSON file) from a
model hash or name (as the recipe gives it; names also match without folder and extension,
case-insensitively) to a ``from_pretrained`` id or a local diffusers folder. Built-in
entries cover SD 1.5 and SDXL base by their usual names and A1111 short hashes.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..aigi.check import DEFAULT_MARGIN_DB, agrees, check_psnr
from ..errors import ModelUnavailableError
from ..records import DecodedLayers, DecodeResult
from .base import Decoder, Progress, finish, report
from .tiny import RANDOM_LABEL

ENV = "MISC_REGEN_MODELS"
MARGIN_ENV = "MISC_REGEN_MARGIN_DB"

# A1111 short hashes (first 10 hex digits of the file's SHA-256) and checkpoint names of the
# mainstream releases, mapped to their diffusers repositories.
BUILTIN_MODELS: dict[str, str] = {
    "6ce0161689": "stable-diffusion-v1-5/stable-diffusion-v1-5",  # v1-5-pruned-emaonly.safetensors
    "cc6cb27103": "stable-diffusion-v1-5/stable-diffusion-v1-5",  # v1-5-pruned-emaonly.ckpt
    "v1-5-pruned-emaonly": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "v1-5-pruned": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "31e35c80fc": "stabilityai/stable-diffusion-xl-base-1.0",  # sd_xl_base_1.0.safetensors
    "sd_xl_base_1.0": "stabilityai/stable-diffusion-xl-base-1.0",
}


def _key(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".safetensors", ".ckpt", ".pt", ".bin"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return base.lower()


@dataclass
class ModelMap:
    """Recipe model (hash or name) → from_pretrained id or local folder."""

    entries: dict[str, str] = field(default_factory=dict)
    # targets named by the user (MISC_REGEN_MODELS or the caller): loaded even from the hub;
    # built-in targets only when their weights are already here (no multi-GB surprise download)
    explicit: set[str] | None = None

    def is_explicit(self, target: str) -> bool:
        return self.explicit is None or target in self.explicit

    @classmethod
    def from_env(cls) -> ModelMap:
        raw = os.environ.get(ENV, "").strip()
        entries = dict(BUILTIN_MODELS)
        explicit: set[str] = set()
        if raw:
            text = Path(raw).read_text(encoding="utf-8") if not raw.startswith("{") else raw
            try:
                extra = json.loads(text)
            except ValueError as e:
                raise ModelUnavailableError(f"{ENV} is not a JSON object of model → path: {e}") from e
            if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
                raise ModelUnavailableError(f"{ENV} must map model names or hashes to paths or ids")
            entries.update(extra)
            explicit = set(extra.values())
        return cls(entries, explicit)

    def resolve(self, model: str | None, model_hash: str | None) -> str | None:
        norm = {_key(k): v for k, v in self.entries.items()}
        for cand in (model_hash, model_hash[:10] if model_hash else None, model):
            if cand:
                hit = self.entries.get(cand) or norm.get(_key(cand))
                if hit:
                    return hit
        return None


@dataclass
class RegenConfig:
    models: ModelMap | None = None  # None: MISC_REGEN_MODELS + built-ins
    margin_db: float | None = None  # None: MISC_REGEN_MARGIN_DB or 3 dB
    device: str | None = None
    dtype: Any = None
    # how to load a pipeline (tests pass a loader that counts calls); default: diffusers
    loader: Callable[[str], Any] | None = None


# ----------------------------------------------------------------------------- samplers


def scheduler_for(pipe: Any, sampler: str | None, scheduler: str | None) -> tuple[Any, str]:
    """A diffusers scheduler for an A1111 / ComfyUI sampler name, from the pipeline's config."""
    import diffusers

    s = (sampler or "").lower().replace("_", " ").replace("+", "p")
    karras = "karras" in s or (scheduler or "").lower() == "karras"
    table = [
        (("euler a", "euler ancestral", "k euler ancestral"), "EulerAncestralDiscreteScheduler", {}),
        (("euler", "k euler"), "EulerDiscreteScheduler", {}),
        (("dpmpp 2m sde",), "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
        (("dpmpp 2m", "dpmpp 2m k"), "DPMSolverMultistepScheduler", {}),
        (("dpmpp 2s a", "dpmpp 2s ancestral"), "DPMSolverSinglestepScheduler", {}),
        (("dpm2 a", "dpm 2 ancestral", "k dpm 2 ancestral"), "KDPM2AncestralDiscreteScheduler", {}),
        (("dpm2", "dpm 2", "k dpm 2"), "KDPM2DiscreteScheduler", {}),
        (("heun", "k heun"), "HeunDiscreteScheduler", {}),
        (("lms", "k lms"), "LMSDiscreteScheduler", {}),
        (("ddim",), "DDIMScheduler", {}),
        (("pndm", "plms"), "PNDMScheduler", {}),
        (("unipc", "uni pc"), "UniPCMultistepScheduler", {}),
        (("lcm",), "LCMScheduler", {}),
        (("deis",), "DEISMultistepScheduler", {}),
    ]
    for names, cls_name, kw in table:
        if any(s == n or s == n + " karras" for n in names):
            cls = getattr(diffusers, cls_name)
            if karras and "use_karras_sigmas" in inspect.signature(cls.__init__).parameters:
                kw = {**kw, "use_karras_sigmas": True}
            return cls.from_config(pipe.scheduler.config, **kw), cls_name + (
                " (Karras sigmas)" if kw.get("use_karras_sigmas") else ""
            )
    return (
        pipe.scheduler,
        f"{type(pipe.scheduler).__name__} (the pipeline's own: sampler {sampler!r} is not mapped)",
    )


def load_pipeline(path: str, device: str | None = None, dtype: Any = None) -> Any:
    """A diffusers text-to-image pipeline (SD 1.x/2.x, SDXL, ...) from a hub id or local folder."""
    from diffusers import AutoPipelineForText2Image

    from .sd_pipeline import pick_device

    dev, dt = pick_device(device, dtype)
    try:
        pipe = AutoPipelineForText2Image.from_pretrained(path, dtype=dt, safety_checker=None)
    except (OSError, ValueError) as e:
        raise ModelUnavailableError(
            f"cannot load the generator {path}: {e}. Map the recipe's model to a local diffusers folder "
            f"with {ENV}, or give the machine access to the model hub."
        ) from e
    pipe = pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe: Any, recipe: Any, progress: Progress | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """Run the pipeline with the recipe's prompt, seed and settings (noise drawn on the CPU)."""
    import torch

    pipe.scheduler, sched_name = scheduler_for(pipe, recipe.sampler, recipe.scheduler)
    steps = recipe.steps or 20
    generator = torch.Generator("cpu").manual_seed(int(recipe.seed or 0))

    def on_step(_pipe: Any, i: int, _t: Any, kw: dict) -> dict:
        report(progress, 0.05 + 0.85 * (i + 1) / steps, f"regenerating: step {i + 1}/{steps}")
        return kw

    out = pipe(
        prompt=recipe.prompt,
        negative_prompt=recipe.negative_prompt or None,
        num_inference_steps=steps,
        guidance_scale=recipe.cfg_scale if recipe.cfg_scale is not None else 7.0,
        width=recipe.width,
        height=recipe.height,
        generator=generator,
        callback_on_step_end=on_step,
    )
    return out.images[0].convert("RGB"), {"scheduler": sched_name, "steps": steps}


def _weights_here(target: str) -> bool:
    """Whether a hub id is in the HF cache or a folder exists (cheap: nothing is loaded)."""
    from . import _local

    return _local(target, "model_index.json")


# ----------------------------------------------------------------------------- decoder


class RegenerationDecoder:
    """Regenerate when the recipe's generator loads and agrees with the pixel layer; else fall back."""

    name = "regen"

    def __init__(self, fallback: Callable[[], Decoder] | Decoder, config: RegenConfig | None = None) -> None:
        self._fallback = fallback
        self.config = config or RegenConfig()
        self.reason = "the file has a recipe"

    def _fall_back(
        self, layers: DecodedLayers, progress: Progress | None, info: dict[str, Any]
    ) -> DecodeResult:
        dec = self._fallback if hasattr(self._fallback, "decode") else self._fallback()
        result = dec.decode(layers, progress=progress)
        result.metadata["regeneration"] = {**info, "path": "fallback", "decoder": result.decoder}
        return result

    def decode(self, layers: DecodedLayers, progress: Progress | None = None) -> DecodeResult:
        section = layers.recipe
        recipe = section.recipe
        info: dict[str, Any] = {"model": recipe.model, "model_hash": recipe.model_hash, "seed": recipe.seed}
        missing = [k for k in ("prompt", "seed", "steps", "cfg_scale") if getattr(recipe, k) in (None, "")]
        if recipe.size is None:
            missing.append("size")
        if missing or section.check_db is None:
            info["reason"] = f"the recipe lacks {', '.join(missing) or 'the regeneration check'}"
            return self._fall_back(layers, progress, info)
        if (recipe.width, recipe.height) != (layers.width, layers.height):
            info["reason"] = (
                f"the image is {layers.width}x{layers.height}, the recipe made {recipe.width}x{recipe.height}"
            )
            return self._fall_back(layers, progress, info)
        models = self.config.models or ModelMap.from_env()
        target = models.resolve(recipe.model, recipe.model_hash)
        if target is None:
            info["reason"] = (
                f"no weights are mapped to model {recipe.model!r} / hash {recipe.model_hash!r} (set {ENV})"
            )
            return self._fall_back(layers, progress, info)
        info["weights"] = target
        if not models.is_explicit(target) and not _weights_here(target):
            info["reason"] = (
                f"the built-in mapping names {target}, whose weights are not on this machine "
                f"(not a folder, not in the HF cache); map the model to them with {ENV}"
            )
            return self._fall_back(layers, progress, info)
        if RANDOM_LABEL in target or RANDOM_LABEL in (recipe.model or ""):
            info["random_weights"] = "random weights: the plumbing is proved, the picture is noise"
        report(progress, 0.0, f"loading the generator {target}")
        try:
            loader = self.config.loader or (lambda p: load_pipeline(p, self.config.device, self.config.dtype))
            pipe = loader(target)
            image, gen_info = generate(pipe, recipe, progress)
        except ModelUnavailableError as e:
            info["reason"] = str(e)
            return self._fall_back(layers, progress, info)
        info.update(gen_info)
        margin = self.config.margin_db
        if margin is None:
            margin = float(os.environ.get(MARGIN_ENV, DEFAULT_MARGIN_DB))
        got = check_psnr(image, layers.lowres)
        info.update(check_db=section.check_db, got_db=round(float(got), 2), margin_db=margin)
        if not agrees(got, section.check_db, margin):
            info["reason"] = (
                f"the regenerated picture is {got:.2f} dB from the pixel layer, the source was "
                f"{section.check_db:.2f} dB: another model version, device or setting"
            )
            return self._fall_back(layers, progress, info)
        info.update(path="regenerated", reason="the regenerated picture agrees with the pixel layer")
        report(progress, 1.0, "regenerated")
        return DecodeResult(
            image=finish(image, layers), decoder=f"regen/{Path(target).name}", metadata={"regeneration": info}
        )
