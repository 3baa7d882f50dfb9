"""Diffusion decoder: the pixel layer, the description and the item maps → a full picture.

    lowres ──bicubic──▶ control image (size rounded up to the UNet's multiple)
    description ──▶ background prompt (overall paragraph) + one prompt per item ("name, detail")
    maps ──▶ regions
    mode "regional":   one pass; each item prompt steers its own region in latent space
    mode "multistage": MISC's schedule: a short pass per item, pasted where its map is on,
                       then the full pass with the paragraph on the pasted picture
    mode "global":     one pass with the paragraph only (maps ignored)
    ──▶ resize to the original size ──▶ colour fix to the pixel layer's low frequencies

The seed comes from the file, so the same file decodes to the same picture with the
same models. Default models: SD 1.5 + ControlNet v1.1 tile (the tile ControlNet is
trained to add detail to a blurry version of the same picture, which is what the pixel
layer is); override with arguments or MISC_SD_MODEL / MISC_CONTROLNET_MODEL.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..records import DecodedLayers, DecodeResult, Description
from .base import Progress, color_fix, finish, report, require_lowres, upsample
from .sd_pipeline import MapGuidedControlNetPipeline, Region
from .tiny import RANDOM_LABEL

DEFAULT_SD_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CONTROLNET_MODEL = "lllyasviel/control_v11f1e_sd15_tile"
MODES = ("regional", "multistage", "global")


def configured_models() -> tuple[str, str, bool]:
    """(sd model, controlnet model, whether either was set in the environment)."""
    sd, cn = os.environ.get("MISC_SD_MODEL"), os.environ.get("MISC_CONTROLNET_MODEL")
    return sd or DEFAULT_SD_MODEL, cn or DEFAULT_CONTROLNET_MODEL, bool(sd or cn)


@dataclass
class DiffusionConfig:
    """Decoding settings. The defaults are reasonable guesses that have NOT been tuned on real
    weights here (no SD weights are reachable offline)."""

    mode: str = "regional"
    steps: int = 20
    strength: float = 0.8  # img2img from the upsampled pixel layer; 1.0 starts from noise
    guidance_scale: float = 5.0
    controlnet_scale: float = 1.0
    negative_prompt: str = "blurry, lowres, jpeg artifacts, distorted, deformed, watermark, text"
    prompt_suffix: str = ""  # e.g. ", high quality photo"
    softness: float = 0.5  # map edges softened by up to this many grid cells
    background_weight: float = 0.3  # share the paragraph keeps inside item regions
    stage_steps: int = 3  # multistage: steps of each item's pass (MISC: 3)
    color_fix: str = "wavelet"
    max_side: int = 1024  # larger pictures are decoded at this size and resized

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown diffusion mode {self.mode!r}; use one of {', '.join(MODES)}")


def item_prompt(name: str, detail: str) -> str:
    return f"{name}, {detail}" if detail.strip() else name


def working_size(width: int, height: int, multiple: int, max_side: int) -> tuple[int, int]:
    """The size the model runs at: at most ``max_side``, sides rounded up to ``multiple``."""
    scale = min(1.0, max_side / max(width, height))
    return (
        max(multiple, math.ceil(width * scale / multiple) * multiple),
        max(multiple, math.ceil(height * scale / multiple) * multiple),
    )


def pixel_mask(grid: np.ndarray, size: tuple[int, int], softness: float) -> np.ndarray:
    """(H, W, 1) float mask of a grid at image ``size`` = (w, h), for pasting (multistage)."""
    from .regions import soft_masks

    w, h = size
    return soft_masks([grid], (h, w), softness)[0, 0].numpy()[..., None]


@dataclass
class DiffusionDecoder:
    pipeline: MapGuidedControlNetPipeline
    config: DiffusionConfig = field(default_factory=DiffusionConfig)
    models: tuple[str, ...] = ()
    name: str = "diffusion"
    reason: str = "chosen by the caller"  # why this decoder: set by get_decoder
    random_weights: bool = False  # the cached models are a test's random ones (codec.hub.RANDOM_MARKER)

    @classmethod
    def from_pretrained(
        cls,
        sd_model: str | None = None,
        controlnet_model: str | None = None,
        device: Any = None,
        dtype: Any = None,
        sd_variant: str | None = None,
        controlnet_variant: str | None = None,
        **config: Any,
    ) -> DiffusionDecoder:
        """Load real weights (local dirs or hub ids); ModelUnavailableError says how to provide them.

        ``sd_variant`` / ``controlnet_variant``: "fp16" to read the fp16 weight files."""
        env_sd, env_cn, _ = configured_models()
        sd_model, controlnet_model = sd_model or env_sd, controlnet_model or env_cn
        pipe = MapGuidedControlNetPipeline.from_pretrained(
            sd_model, controlnet_model, device=device, dtype=dtype,
            sd_variant=sd_variant, controlnet_variant=controlnet_variant,
        )
        return cls(
            pipe,
            DiffusionConfig(**config),
            models=(sd_model, controlnet_model),
            name=f"diffusion/{sd_model.rstrip('/').split('/')[-1]}+{controlnet_model.rstrip('/').split('/')[-1]}",
        )

    def decode(self, layers: DecodedLayers, progress: Progress | None = None) -> DecodeResult:
        cfg = self.config
        lowres = require_lowres(layers)
        description = layers.description or Description()
        size = working_size(layers.width, layers.height, self.pipeline.size_multiple, cfg.max_side)
        control = upsample(lowres, size)
        background = (
            description.overall.strip() or ", ".join(i.name for i in description.items)
        ) + cfg.prompt_suffix
        items = description.items
        maps = layers.maps if layers.maps is not None and len(layers.maps) == len(items) else None
        mode = cfg.mode if maps and items else "global"
        common = dict(
            negative_prompt=cfg.negative_prompt,
            guidance_scale=cfg.guidance_scale,
            controlnet_scale=cfg.controlnet_scale,
            softness=cfg.softness,
            background_weight=cfg.background_weight,
            seed=layers.seed,
            progress=progress,
        )
        report(progress, 0.0, f"diffusion decoding ({mode})")

        if mode == "regional":
            regions = [
                Region(item_prompt(i.name, i.detail) + cfg.prompt_suffix, g)
                for i, g in zip(items, maps, strict=True)
            ]
            image = self.pipeline(
                control,
                background,
                regions=regions,
                num_inference_steps=cfg.steps,
                strength=cfg.strength,
                progress_span=(0.0, 0.95),
                **common,
            )
        elif mode == "multistage":
            # MISC: each item gets a short pass of its own, pasted where its map is on; the
            # pasted picture then conditions the full pass with the paragraph.
            pasted = np.asarray(control, dtype=np.float32)
            n = len(items)
            for k, (item, grid) in enumerate(zip(items, maps, strict=True)):
                span = (0.4 * k / n, 0.4 * (k + 1) / n)
                part = self.pipeline(
                    control,
                    item_prompt(item.name, item.detail) + cfg.prompt_suffix,
                    num_inference_steps=cfg.stage_steps,
                    strength=cfg.strength,
                    progress_span=span,
                    **common,
                )
                m = pixel_mask(grid, size, cfg.softness)
                pasted = pasted * (1 - m) + np.asarray(part, dtype=np.float32) * m
            pasted_image = Image.fromarray(np.clip(np.rint(pasted), 0, 255).astype(np.uint8), "RGB")
            image = self.pipeline(
                pasted_image,
                background,
                num_inference_steps=cfg.steps,
                strength=cfg.strength,
                progress_span=(0.4, 0.95),
                **common,
            )
        else:
            image = self.pipeline(
                control,
                background,
                num_inference_steps=cfg.steps,
                strength=cfg.strength,
                progress_span=(0.0, 0.95),
                **common,
            )

        image = image.resize((layers.width, layers.height), Image.Resampling.BICUBIC)
        image = color_fix(image, upsample(lowres, (layers.width, layers.height)), cfg.color_fix)
        report(progress, 1.0, "done")
        metadata: dict[str, Any] = {
            "decoder_reason": self.reason,
            "mode": mode,
            "requested_mode": cfg.mode,
            "models": list(self.models),
            "seed": layers.seed,
            "working_size": list(size),
            "device": str(self.pipeline.device),
            "dtype": str(self.pipeline.dtype).replace("torch.", ""),
            "config": asdict(cfg),
        }
        if mode != cfg.mode:
            metadata["note"] = "no item maps in the file: decoded with the paragraph only"
        if self.random_weights or any(RANDOM_LABEL in m for m in self.models):
            metadata["weights"] = "random (proves the code path, not the quality)"
        return DecodeResult(image=finish(image, layers), decoder=self.name, metadata=metadata)
