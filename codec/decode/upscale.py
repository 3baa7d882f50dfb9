"""Text-guided x4 upscaler decoder: the pixel layer and the paragraph → a full picture.

    lowres ──resize──▶ ¼ of the original size (sides rounded up to the UNet's multiple)
    description ──▶ prompt (overall paragraph, else the item names; "name, detail" added)
    ──▶ StableDiffusionUpscalePipeline (stabilityai/stable-diffusion-x4-upscaler), ×4
    ──▶ resize to the original size ──▶ colour fix to the pixel layer's low frequencies

An alternative to the ControlNet decoder (issue 4's optional decoder): one model, no
regions (the item maps are ignored, and the result says so), trained to add detail to a
¼-size picture under a text prompt. Pixel layers coarser than ÷4 are first resized up to
¼ size, finer ones down, so one ×4 pass always lands on the original size. The
``noise_level`` (0-350) is how much the model may depart from the pixel layer: the pixel
layers here are far blurrier than the upscaler's training inputs, so the default is higher
than diffusers' 20. Defaults are NOT tuned on real weights (none are reachable offline).
Model: ``model=`` or MISC_UPSCALER_MODEL, a hub id or a local diffusers directory.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from PIL import Image

from ..records import DecodedLayers, DecodeResult, Description
from .base import Progress, color_fix, finish, report, require_lowres, upsample
from .sd_pipeline import _load, pick_device
from .tiny import RANDOM_LABEL

DEFAULT_UPSCALER_MODEL = "stabilityai/stable-diffusion-x4-upscaler"
ENV = "MISC_UPSCALER_MODEL"


def configured_upscaler() -> str:
    return os.environ.get(ENV) or DEFAULT_UPSCALER_MODEL


@dataclass
class UpscaleConfig:
    steps: int = 25
    guidance_scale: float = 7.0
    noise_level: int = 60
    negative_prompt: str = "blurry, lowres, jpeg artifacts, distorted, deformed, watermark, text"
    prompt_suffix: str = ""
    color_fix: str = "wavelet"
    max_side: int = 2048  # larger outputs are decoded at this size and resized

    def __post_init__(self) -> None:
        if not 0 <= self.noise_level <= 350:
            raise ValueError(f"noise_level must be in 0..350 (the upscaler's range), got {self.noise_level}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")


def upscaler_prompt(description: Description) -> str:
    """The paragraph, then each item as "name, detail"; just the names when there is no paragraph."""
    items = [f"{i.name}, {i.detail}" if i.detail.strip() else i.name for i in description.items]
    return ", ".join(p for p in [description.overall.strip().rstrip("."), *items] if p)


def lowres_size(width: int, height: int, multiple: int, max_side: int) -> tuple[int, int]:
    """The size the low-res input is given at: ¼ of the output (at most ``max_side``), sides
    rounded up to ``multiple`` so the UNet's down-samplings divide them."""
    scale = min(1.0, max_side / max(width, height)) / 4
    return (
        max(multiple, math.ceil(width * scale / multiple) * multiple),
        max(multiple, math.ceil(height * scale / multiple) * multiple),
    )


def _size_multiple(unet: Any) -> int:
    return 2 ** (len(unet.config.block_out_channels) - 1)


@dataclass
class UpscaleDecoder:
    pipeline: Any  # diffusers.StableDiffusionUpscalePipeline
    config: UpscaleConfig = field(default_factory=UpscaleConfig)
    model: str = DEFAULT_UPSCALER_MODEL
    name: str = "upscale"
    reason: str = "chosen by the caller"

    @classmethod
    def from_components(
        cls, components: dict[str, Any], model: str, device: Any = None, dtype: Any = None, **config: Any
    ) -> UpscaleDecoder:
        from diffusers import StableDiffusionUpscalePipeline

        dev, dt = pick_device(device, dtype)
        pipe = StableDiffusionUpscalePipeline(**components, max_noise_level=350)
        pipe = pipe.to(dev)
        if pipe.unet.dtype != dt:
            pipe = pipe.to(dtype=dt)
        if dt == torch.float16:  # the upscaler's VAE overflows in fp16
            pipe.vae.to(torch.float32)
        pipe.set_progress_bar_config(disable=True)
        return cls(
            pipe, UpscaleConfig(**config), model=model, name=f"upscale/{model.rstrip('/').split('/')[-1]}"
        )

    @classmethod
    def from_pretrained(
        cls, model: str | None = None, device: Any = None, dtype: Any = None, **config: Any
    ) -> UpscaleDecoder:
        """Load real weights (local dir or hub id); ModelUnavailableError says how to provide them."""
        from diffusers import StableDiffusionUpscalePipeline

        model = model or configured_upscaler()
        _, dt = pick_device(device, dtype)
        pipe = _load(
            "x4 upscaler", model, ENV, StableDiffusionUpscalePipeline.from_pretrained, model, torch_dtype=dt
        )
        parts = {
            k: getattr(pipe, k)
            for k in ("vae", "text_encoder", "tokenizer", "unet", "low_res_scheduler", "scheduler")
        }
        return cls.from_components(parts, model, device=device, dtype=dtype, **config)

    def decode(self, layers: DecodedLayers, progress: Progress | None = None) -> DecodeResult:
        cfg = self.config
        lowres = require_lowres(layers)
        description = layers.description or Description()
        prompt = upscaler_prompt(description) + cfg.prompt_suffix
        size = lowres_size(layers.width, layers.height, _size_multiple(self.pipeline.unet), cfg.max_side)
        start = lowres.resize(
            size, Image.Resampling.BICUBIC if size[0] > lowres.width else Image.Resampling.LANCZOS
        )
        report(progress, 0.0, f"x4 upscaling {size[0]}×{size[1]} with the paragraph as prompt")
        device = self.pipeline.unet.device
        generator = torch.Generator(device="cpu").manual_seed(layers.seed)

        def step(i: int, _t: Any, _latents: Any) -> None:
            report(progress, 0.95 * (i + 1) / cfg.steps, f"x4 upscaler step {i + 1}/{cfg.steps}")

        with torch.inference_mode():
            out = self.pipeline(
                prompt=prompt,
                image=start,
                num_inference_steps=cfg.steps,
                guidance_scale=cfg.guidance_scale,
                noise_level=cfg.noise_level,
                negative_prompt=cfg.negative_prompt,
                generator=generator,
                callback=step,
                callback_steps=1,
            ).images[0]
        image = out.resize((layers.width, layers.height), Image.Resampling.BICUBIC)
        image = color_fix(image, upsample(lowres, (layers.width, layers.height)), cfg.color_fix)
        report(progress, 1.0, "done")
        metadata: dict[str, Any] = {
            "decoder_reason": self.reason,
            "model": self.model,
            "prompt": prompt,
            "seed": layers.seed,
            "input_size": list(size),
            "device": str(device),
            "dtype": str(self.pipeline.unet.dtype).replace("torch.", ""),
            "config": asdict(cfg),
            "ignores": "the item maps: one prompt for the whole picture",
        }
        if RANDOM_LABEL in self.model:
            metadata["weights"] = "random (proves the code path, not the quality)"
        return DecodeResult(image=finish(image, layers), decoder=self.name, metadata=metadata)
