"""GPU check of the full profile: build its three models and time describe, maps, decode.

    python -m bench.gpu_check                       # CUDA: full-size models, one table
    python -m bench.gpu_check --json out.json       # ... and the rows as JSON
    python -m bench.gpu_check --device cpu --tiny   # smoke run of the same code (tests, CI)

Models (the full profile's, codec/profile.py), each labelled with where its weights came from:

    describe  Qwen/Qwen2.5-VL-3B-Instruct (bf16, as the app loads it); without the real
              weights in the HF cache: the same architecture, full size, RANDOM weights
              (a character tokenizer stands in for the real one, so a random model writes
              max_new_tokens of noise: the timing is the generation budget's worst case)
    maps      CLIP Surgery on open_clip ViT-B-16 (fp32, as the app runs it): openai
              weights if cached, else random; 3 item names, 85 prompt templates each
    decode    SD 1.5 + ControlNet tile (fp16), regional mode with 3 item maps, 512×512,
              20 denoising steps (steps 25 × the default strength 0.8); real weights if
              cached, else the full-size architectures with random weights

Each step runs once to warm up (CUDA kernels, the CLIP text cache is cleared after) and
once timed; peak GPU memory is measured per step. Without CUDA (and without --device cpu)
it stops at once with a message saying so. ``--tiny`` swaps in tiny random models so the
whole path runs on a CPU in seconds; its numbers mean nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ITEMS = ("red car", "old man", "wooden bench")


@dataclass
class Row:
    step: str
    model: str
    weights: str  # "real" | "random"
    device: str
    dtype: str
    seconds: float
    detail: str
    peak_gib: float | None = None


class NoCudaError(RuntimeError):
    pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Any) -> tuple[Any, float, float | None]:
    """(result, seconds, peak GiB on the GPU) of one call."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return out, seconds, peak


def test_picture(size: int) -> Image.Image:
    """A deterministic picture with structure (gradients, a disc, stripes)."""
    y, x = np.mgrid[0:size, 0:size] / size
    r = (x * 255).astype(np.uint8)
    g = ((0.5 + 0.5 * np.sin(12 * y)) * 255).astype(np.uint8)
    b = (((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.04) * 220).astype(np.uint8)
    return Image.fromarray(np.stack([r, g, b], -1), "RGB")


# ----------------------------------------------------------------------------- the models


def _real(key: str) -> bool:
    from codec.profile import FULL_MODELS

    files = FULL_MODELS[key]
    return files.cached() and not files.random_weights()


def build_describer(device: torch.device, tiny: bool, tmp: Path) -> tuple[Any, str, str]:
    from bench.random_models import (
        qwen25_vl_3b_config,
        qwen25_vl_processor,
        qwen_char_tokenizer,
        tiny_qwen25_vl,
    )
    from codec.describe import HFDescriber
    from codec.profile import DEFAULT_VLM

    if tiny:
        path = tiny_qwen25_vl(tmp / "vlm")
        return (
            HFDescriber(str(path), device=str(device), max_new_tokens=32).load(),
            "tiny Qwen2.5-VL",
            "random",
        )
    dtype = torch.bfloat16
    if _real("vlm"):
        return HFDescriber(DEFAULT_VLM, device=str(device), dtype=dtype).load(), DEFAULT_VLM, "real"
    from transformers import Qwen2_5_VLForConditionalGeneration

    tokenizer = qwen_char_tokenizer()
    processor = qwen25_vl_processor(tokenizer, side=504)  # 324 image tokens, as a 512² picture gives
    with _default(device, dtype):
        vlm = Qwen2_5_VLForConditionalGeneration(qwen25_vl_3b_config(tokenizer)).eval()
    d = HFDescriber(DEFAULT_VLM, device=str(device), dtype=dtype, processor=processor, vlm=vlm)
    return d, f"{DEFAULT_VLM} architecture", "random"


def build_clip(device: torch.device, tiny: bool) -> tuple[Any, str, str]:
    import open_clip

    from codec.maps import ClipSurgery, load_clip_surgery

    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    if tiny:
        model = open_clip.CLIP(
            embed_dim=32,
            vision_cfg=dict(image_size=64, layers=3, width=64, patch_size=16, head_width=32),
            text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
        )
        return ClipSurgery(model, tokenizer, name="tiny", device=device), "tiny open_clip ViT", "random"
    if _real("clip"):
        return load_clip_surgery("ViT-B-16", "openai", device=device), "ViT-B-16/openai", "real"
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    return ClipSurgery(model, tokenizer, name="ViT-B-16/random", device=device), "ViT-B-16", "random"


def build_decoder(device: torch.device, tiny: bool, steps: int) -> tuple[Any, str, str]:
    from codec.decode import load_diffusion
    from codec.decode.diffusion import DiffusionConfig, DiffusionDecoder
    from codec.decode.sd_pipeline import MapGuidedControlNetPipeline
    from codec.decode.tiny import sd15_components, tiny_components

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    config = dict(mode="regional", steps=steps, strength=0.8)
    if not tiny and _real("sd") and _real("controlnet"):
        dec = load_diffusion(device=device, dtype=dtype, **config)
        return dec, "SD 1.5 + ControlNet tile", "real"
    with _default(device, dtype):
        parts = tiny_components(0) if tiny else sd15_components(0)
    pipe = MapGuidedControlNetPipeline(**parts, device=device, dtype=dtype)
    name = "tiny SD-like + ControlNet" if tiny else "SD 1.5 + ControlNet v1.1 architectures"
    dec = DiffusionDecoder(
        pipe, DiffusionConfig(**config), models=(name,), name="diffusion", random_weights=True
    )
    return dec, name, "random"


class _default:
    """Build modules directly on ``device`` in ``dtype`` (a 3.75 G-parameter model in fp32
    on the CPU first would need 15 GB and minutes)."""

    def __init__(self, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype

    def __enter__(self) -> None:
        self._old = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)
        self._ctx = torch.device(self.device)
        self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)
        torch.set_default_dtype(self._old)


# ----------------------------------------------------------------------------- the check


def run(device_name: str = "cuda", tiny: bool = False, size: int = 512, denoise_steps: int = 20) -> list[Row]:
    from codec.records import DecodedLayers, Description, Item

    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise NoCudaError(
            "bench.gpu_check needs CUDA and torch.cuda.is_available() is False here "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). Run it on a GPU machine, "
            "or `python -m bench.gpu_check --device cpu --tiny` for the smoke run."
        )
    device = torch.device(device_name)
    steps = max(1, round(denoise_steps / 0.8))  # the decoder's default strength 0.8
    picture = test_picture(size)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="misc-gpu-check-") as tmp:
        describer, model, weights = build_describer(device, tiny, Path(tmp))
        describer.generate_text(picture)  # warm-up
        text, seconds, peak = _timed(device, lambda d=describer: d.generate_text(picture))
        tokens = len(describer.processor.tokenizer(text, add_special_tokens=False).input_ids)
        dtype = str(getattr(describer.vlm, "dtype", "")).replace("torch.", "")
        rows.append(
            Row(
                "describe",
                model,
                weights,
                str(device),
                dtype,
                seconds,
                f"{tokens} new tokens ({tokens / seconds:.1f}/s)",
                peak,
            )
        )
        del describer
        _free(device)

        clip, model, weights = build_clip(device, tiny)
        clip.grids(picture, list(ITEMS))
        clip._text_cache.clear()  # time the 85-template text encoding too, as a first request does
        grids, seconds, peak = _timed(device, lambda c=clip: c.grids(picture, list(ITEMS)))
        dtype = str(next(clip.model.parameters()).dtype).replace("torch.", "")
        rows.append(
            Row(
                "maps",
                model,
                weights,
                str(device),
                dtype,
                seconds,
                f"{len(ITEMS)} items × {len(clip.templates)} templates, 8×8 grids",
                peak,
            )
        )
        del clip
        _free(device)

        decoder, model, weights = build_decoder(device, tiny, steps)
        layers = DecodedLayers(
            width=size,
            height=size,
            grayscale=False,
            seed=1,
            models=[],
            lowres=picture.resize((size // 8, size // 8), Image.Resampling.BICUBIC),
            description=Description(
                [Item(n, "") for n in ITEMS], "A test picture with a car, a man and a bench."
            ),
            maps=[g if g.any() else np.eye(8, dtype=bool) for g in grids],
        )
        decoder.decode(layers)  # warm-up
        out, seconds, peak = _timed(device, lambda: decoder.decode(layers))
        rows.append(
            Row(
                "decode",
                model,
                weights,
                str(device),
                str(decoder.pipeline.dtype).replace("torch.", ""),
                seconds,
                f"{size}×{size}, {out.metadata['mode']}, {round(steps * 0.8)} denoising steps, "
                f"{len(ITEMS)} items",
                peak,
            )
        )
    return rows


def _free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def table(rows: list[Row]) -> str:
    head = "| step | model | weights | device | dtype | seconds | peak GPU GiB | what |\n|---|---|---|---|---|---|---|---|"
    lines = [head]
    for r in rows:
        weights = "real" if r.weights == "real" else "**random weights**"
        peak = f"{r.peak_gib:.2f}" if r.peak_gib is not None else "—"
        lines.append(
            f"| {r.step} | {r.model} | {weights} | {r.device} | {r.dtype} | {r.seconds:.2f} | {peak} | {r.detail} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) | cuda:N | cpu (with --tiny)")
    p.add_argument("--tiny", action="store_true", help="tiny random models: a smoke run of the code path")
    p.add_argument("--size", type=int, default=512, help="picture side for maps and decode (default 512)")
    p.add_argument("--denoise-steps", type=int, default=20, help="denoising steps of the decode (default 20)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    if args.device == "cpu" and not args.tiny:
        print(
            "error: full-size models on the CPU take many minutes per step; use --tiny with --device cpu",
            file=sys.stderr,
        )
        return 2
    try:
        rows = run(args.device, args.tiny, args.size, args.denoise_steps)
    except NoCudaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"torch {torch.__version__}; {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}"
    )
    print(table(rows))
    if any(r.weights != "real" for r in rows):
        print(
            "\nRandom weights time the architectures, not a real model's output (a random VLM writes its whole "
            "token budget)."
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
