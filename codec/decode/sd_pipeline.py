"""Stable Diffusion + ControlNet img2img with map-guided regional prompts, over diffusers parts.

A diffusers-style pipeline, written out step by step instead of wrapping the stock
``StableDiffusionControlNetImg2ImgPipeline``, because the regional blend has to sit inside
the denoising loop (between the UNet and the scheduler) and the stock pipeline has no
place for it:

    control image (upsampled pixel layer, [0,1]) ──────────────┐
    init image ──VAE enc──▶ z₀ ──add noise (strength)──▶ z_t    │
    prompts [negative, background, item₁ … item_K] ──CLIP──▶ c  │
    for t in timesteps:                                         ▼
        ε_p = UNet(z_t, t, c_p, ControlNet(z_t, t, c_p, control))   (one batch, all prompts)
        ε_p ← ε_neg + g·(ε_p − ε_neg)                           (classifier-free guidance)
        ε  = Σ_p w_p ε_p                                        (item maps, regions.py)
        z_t ← scheduler.step(ε, t, z_t)
    image = VAE dec(z₀)

Components are passed in (real ones from ``from_pretrained``, tiny random ones in tests);
the same code runs for SD 1.x and 2.x (ε- or v-prediction is the scheduler's business)
and for SDXL (a second text encoder; its pooled embedding and the picture size go to the
UNet and ControlNet as ``added_cond_kwargs``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ModelUnavailableError
from .base import Progress, report
from .regions import blend, region_weights, soft_masks


@dataclass
class PromptEmbeds:
    """CLIP hidden states (P, L, D) for P prompts; SDXL adds pooled embeddings (P, D2)."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.hidden.shape[0]


@dataclass
class Region:
    """A prompt that holds where its item map is on (grid: 2-D bool array over the image)."""

    prompt: str
    grid: np.ndarray


def pick_device(
    device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> tuple[torch.device, torch.dtype]:
    """CUDA in fp16 when there is a GPU, else the CPU in fp32 (bf16 is ~3× slower on CPU)."""
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    return dev, dtype


def how_to_provide(model_id: str, env_var: str) -> str:
    if (
        os.path.isdir(model_id)
        or model_id.startswith(("/", ".", "~"))
        or os.path.sep in model_id.strip("/").replace("/", "", 1)
    ):
        return (
            f"{model_id} is taken as a local directory: it must hold the model in diffusers layout "
            f"(save_pretrained output); point {env_var} or the matching option at such a directory, "
            f"or give a hub id such as the default"
        )
    return (
        f"provide it as a local diffusers directory ({env_var}=/path/to/model or the matching "
        f"option), put it in the Hugging Face cache (`hf download {model_id}` on a machine with "
        f"network, then copy ~/.cache/huggingface), or allow network access to the hub "
        f"(unset HF_HUB_OFFLINE)"
    )


def _load(what: str, model_id: str, env_var: str, loader: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return loader(*args, **kwargs)
    except Exception as exc:  # OSError, EnvironmentError, HF hub errors, ValueError for bad dirs
        raise ModelUnavailableError(
            f"cannot load the {what} of {model_id!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
            + how_to_provide(model_id, env_var)
        ) from exc


class MapGuidedControlNetPipeline:
    """SD + ControlNet img2img whose noise prediction is a map-weighted blend of prompts."""

    def __init__(
        self,
        vae: Any,
        text_encoder: Any,
        tokenizer: Any,
        unet: Any,
        controlnet: Any,
        scheduler: Any,
        text_encoder_2: Any = None,
        tokenizer_2: Any = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ):
        self.is_xl = getattr(unet.config, "addition_embed_type", None) == "text_time"
        if self.is_xl and (text_encoder_2 is None or tokenizer_2 is None):
            raise ValueError("an SDXL UNet needs text_encoder_2 and tokenizer_2")
        self.device, self.dtype = pick_device(device, dtype)
        # SDXL's VAE overflows in fp16 (config.force_upcast): keep it in fp32 then.
        upcast = getattr(vae.config, "force_upcast", False) and self.dtype == torch.float16
        self.vae_dtype = torch.float32 if upcast else self.dtype
        self.vae = self._place(vae, self.vae_dtype)
        self.text_encoder, self.unet, self.controlnet = (
            self._place(m) for m in (text_encoder, unet, controlnet)
        )
        self.text_encoder_2 = self._place(text_encoder_2) if text_encoder_2 is not None else None
        self.tokenizer, self.tokenizer_2 = tokenizer, tokenizer_2
        self.scheduler = scheduler
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        # The latent must survive the UNet's downsamplings: pixel sides are multiples of this.
        self.size_multiple = self.vae_scale * 2 ** (len(self.unet.config.down_block_types) - 1)

    def _place(self, module: Any, dtype: torch.dtype | None = None) -> Any:
        dtype = dtype or self.dtype
        module = module.to(self.device)
        if next(module.parameters()).dtype != dtype:
            module = module.to(dtype)
        return module.eval()

    @classmethod
    def from_pretrained(
        cls,
        sd_model: str,
        controlnet_model: str,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        sd_variant: str | None = None,
        controlnet_variant: str | None = None,
        **kwargs: Any,
    ) -> MapGuidedControlNetPipeline:
        """Load a Stable Diffusion repo/dir and a ControlNet repo/dir (diffusers layout).

        ``sd_variant`` / ``controlnet_variant`` (e.g. "fp16") pick the weight files of that
        variant (half the download); tokenizer and scheduler have none. Every failure
        raises ModelUnavailableError naming the model and how to provide it.
        """
        from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel, UniPCMultistepScheduler
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        _, dtype = pick_device(device, dtype)
        sd_env, cn_env = "MISC_SD_MODEL", "MISC_CONTROLNET_MODEL"
        controlnet = _load(
            "ControlNet",
            controlnet_model,
            cn_env,
            ControlNetModel.from_pretrained,
            controlnet_model,
            torch_dtype=dtype,
            variant=controlnet_variant,
            **kwargs,
        )
        unet = _load(
            "UNet",
            sd_model,
            sd_env,
            UNet2DConditionModel.from_pretrained,
            sd_model,
            subfolder="unet",
            torch_dtype=dtype,
            variant=sd_variant,
            **kwargs,
        )
        vae = _load(
            "VAE",
            sd_model,
            sd_env,
            AutoencoderKL.from_pretrained,
            sd_model,
            subfolder="vae",
            torch_dtype=dtype,
            variant=sd_variant,
            **kwargs,
        )
        text_encoder = _load(
            "text encoder",
            sd_model,
            sd_env,
            CLIPTextModel.from_pretrained,
            sd_model,
            subfolder="text_encoder",
            torch_dtype=dtype,
            variant=sd_variant,
            **kwargs,
        )
        tokenizer = _load(
            "tokenizer",
            sd_model,
            sd_env,
            CLIPTokenizer.from_pretrained,
            sd_model,
            subfolder="tokenizer",
            **kwargs,
        )
        extra: dict[str, Any] = {}
        if getattr(unet.config, "addition_embed_type", None) == "text_time":  # SDXL
            extra["text_encoder_2"] = _load(
                "second text encoder",
                sd_model,
                sd_env,
                CLIPTextModelWithProjection.from_pretrained,
                sd_model,
                subfolder="text_encoder_2",
                torch_dtype=dtype,
                **kwargs,
            )
            extra["tokenizer_2"] = _load(
                "second tokenizer",
                sd_model,
                sd_env,
                CLIPTokenizer.from_pretrained,
                sd_model,
                subfolder="tokenizer_2",
                **kwargs,
            )
        scheduler = _load(
            "scheduler config",
            sd_model,
            sd_env,
            UniPCMultistepScheduler.from_pretrained,
            sd_model,
            subfolder="scheduler",
            **kwargs,
        )
        return cls(
            vae, text_encoder, tokenizer, unet, controlnet, scheduler, device=device, dtype=dtype, **extra
        )

    # ---- pieces of the loop, each small enough to test alone ----------------------------

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> PromptEmbeds:
        """CLIP hidden states of each prompt; long prompts are cut at the tokenizer's limit (77).

        SD 1.x/2.x: the text encoder's last hidden states. SDXL: both encoders' penultimate
        hidden states side by side, and the second encoder's pooled projection.
        """

        def ids(tokenizer: Any) -> torch.Tensor:
            return tokenizer(
                list(prompts),
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(self.device)

        if not self.is_xl:
            return PromptEmbeds(self.text_encoder(ids(self.tokenizer))[0].to(self.dtype))
        first = self.text_encoder(ids(self.tokenizer), output_hidden_states=True)
        second = self.text_encoder_2(ids(self.tokenizer_2), output_hidden_states=True)
        hidden = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
        return PromptEmbeds(hidden.to(self.dtype), second[0].to(self.dtype))

    def added_conditions(
        self, embeds: PromptEmbeds, latent_hw: tuple[int, int]
    ) -> dict[str, torch.Tensor] | None:
        """SDXL's extra conditioning: pooled text and (original size, crop, target size)."""
        if not self.is_xl:
            return None
        h, w = (side * self.vae_scale for side in latent_hw)
        time_ids = torch.tensor([[h, w, 0, 0, h, w]], device=self.device, dtype=self.dtype)
        return {"text_embeds": embeds.pooled, "time_ids": time_ids.expand(len(embeds), -1)}

    def image_to_tensor(self, image: Image.Image) -> torch.Tensor:
        """PIL RGB → (1, 3, H, W) in [0, 1]."""
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1)[None].to(self.device, self.dtype)

    def weights_for(
        self, regions: Sequence[Region], latent_hw: tuple[int, int], softness: float, background_weight: float
    ) -> torch.Tensor | None:
        if not regions:
            return None
        masks = soft_masks([r.grid for r in regions], latent_hw, softness)
        return region_weights(masks, background_weight).to(self.device, self.dtype)

    @torch.no_grad()
    def predict_noise(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        embeds: PromptEmbeds,
        control: torch.Tensor,
        weights: torch.Tensor | None,
        guidance_scale: float,
        controlnet_scale: float,
    ) -> torch.Tensor:
        """One step's noise prediction: all prompts in one batch, guidance, then the map blend.

        ``embeds`` is [negative, background, item₁, …]; ``weights`` (background first) or
        None when there is only the background prompt.
        """
        n = len(embeds)
        x = self.scheduler.scale_model_input(latents, t).expand(n, -1, -1, -1)
        added = self.added_conditions(embeds, tuple(latents.shape[-2:]))
        down, mid = self.controlnet(
            x,
            t,
            encoder_hidden_states=embeds.hidden,
            controlnet_cond=control.expand(n, -1, -1, -1),
            conditioning_scale=controlnet_scale,
            added_cond_kwargs=added,
            return_dict=False,
        )
        eps = self.unet(
            x,
            t,
            encoder_hidden_states=embeds.hidden,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
            added_cond_kwargs=added,
            return_dict=False,
        )[0]
        uncond, cond = eps[:1], eps[1:]
        guided = uncond + guidance_scale * (cond - uncond)
        return blend(guided, weights)

    # ---- the whole loop -----------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        control_image: Image.Image,
        prompt: str,
        negative_prompt: str = "",
        regions: Sequence[Region] = (),
        init_image: Image.Image | None = None,
        num_inference_steps: int = 20,
        strength: float = 0.8,
        guidance_scale: float = 5.0,
        controlnet_scale: float = 1.0,
        softness: float = 0.5,
        background_weight: float = 0.3,
        seed: int = 0,
        progress: Progress | None = None,
        progress_span: tuple[float, float] = (0.0, 1.0),
    ) -> Image.Image:
        """Decode one picture; sizes must be multiples of ``self.size_multiple``.

        ``init_image`` (default: the control image) is noised to ``strength`` and denoised
        for ``round(num_inference_steps * strength)`` steps; strength 1 starts from pure noise.
        """
        width, height = control_image.size
        if width % self.size_multiple or height % self.size_multiple:
            raise ValueError(f"image sides must be multiples of {self.size_multiple}, got {width}x{height}")
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        generator = torch.Generator("cpu").manual_seed(
            int(seed)
        )  # CPU noise: same seed, same picture anywhere
        lo, hi = progress_span

        # 1. prompts: negative first (for guidance), then background, then one per region
        embeds = self.encode_prompts([negative_prompt, prompt] + [r.prompt for r in regions])
        latent_hw = (height // self.vae_scale, width // self.vae_scale)
        weights = self.weights_for(regions, latent_hw, softness, background_weight)

        # 2. control image and initial latents
        control = self.image_to_tensor(control_image)
        init = self.image_to_tensor(init_image.resize(control_image.size) if init_image else control_image)
        posterior = self.vae.encode((init * 2.0 - 1.0).to(self.vae_dtype)).latent_dist
        latents = (posterior.sample(generator=generator) * self.vae.config.scaling_factor).to(self.dtype)

        # 3. timesteps for img2img: skip the first (1 - strength) of the schedule
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        t_start = num_inference_steps - min(
            num_inference_steps, max(1, round(num_inference_steps * strength))
        )
        timesteps = self.scheduler.timesteps[t_start * self.scheduler.order :]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(t_start * self.scheduler.order)
        noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32).to(
            self.device, self.dtype
        )
        if strength >= 1.0:
            latents = noise * self.scheduler.init_noise_sigma
        else:
            latents = self.scheduler.add_noise(latents, noise, timesteps[:1])

        # 4. denoise
        for i, t in enumerate(timesteps):
            eps = self.predict_noise(latents, t, embeds, control, weights, guidance_scale, controlnet_scale)
            latents = self.scheduler.step(eps, t, latents, return_dict=False)[0]
            report(
                progress,
                lo + (hi - lo) * (i + 1) / (len(timesteps) + 1),
                f"denoising step {i + 1}/{len(timesteps)}",
            )

        # 5. back to pixels
        image = self.vae.decode(
            (latents / self.vae.config.scaling_factor).to(self.vae_dtype), return_dict=False
        )[0]
        image = (
            ((image.float().clamp(-1, 1) + 1) * 127.5)
            .round()
            .to(torch.uint8)[0]
            .permute(1, 2, 0)
            .cpu()
            .numpy()
        )
        report(progress, hi, "VAE decode done")
        return Image.fromarray(image, "RGB")
