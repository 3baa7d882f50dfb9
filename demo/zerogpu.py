"""The demo's GPU work, in functions ZeroGPU can lend a GPU to.

On a ZeroGPU Space (hardware "zero-a10g"/H200 slices) the app's process has no GPU; a
GPU is attached only while a function decorated with ``spaces.GPU`` runs, in a forked
worker. That shapes the code here:

* the three GPU steps (describe, maps, decode) are module-level functions decorated at
  import, before ``launch`` (ZeroGPU registers them then), with a ``duration`` that fits
  the work (decode: from the steps and pixels it will run);
* the models are loaded once in the main process, on CPU, and ``.to("cuda")`` there
  (ZeroGPU records it and moves the weights when a worker starts); they live in the
  module-level ``MODELS`` registry, which the forked worker inherits, so calls pass only
  a key and picklable data (PIL images, layers), and return picklable results on the CPU;
* a progress callback cannot cross into the worker, so on ZeroGPU it is not passed.

Without the ``spaces`` package, or with it outside ZeroGPU (its decorator is then the
identity), these are plain calls and nothing changes. app.py imports ``spaces`` before
torch touches CUDA, as ZeroGPU requires.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from codec.profile import zerogpu_env

try:  # the Space's runtime installs it; elsewhere it may be absent
    import spaces
except ImportError:  # pragma: no cover - depends on the environment
    spaces = None

Progress = Callable[[float, str], None]
MODELS: dict[str, Any] = {}  # key → loaded describer / ClipSurgery / decoder (inherited by ZeroGPU workers)

DESCRIBE_SECONDS = 60  # a 3B VLM: model move + ~250 new tokens
MAPS_SECONDS = 30  # ViT-B/16 + 85 prompt templates per item
DECODE_MIN_SECONDS, DECODE_MAX_SECONDS = 30, 240


def on_zerogpu() -> bool:
    """A ZeroGPU Space: the decorator really lends a GPU (and needs picklable arguments)."""
    return spaces is not None and zerogpu_env()


def gpu(duration: int | Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` where the package is installed, else the identity."""

    def decorate(fn: Callable) -> Callable:
        if spaces is None:
            return fn
        return spaces.GPU(duration=duration)(fn)

    return decorate


def register(key: str, model: Any) -> None:
    MODELS[key] = model


def _model(key: str) -> Any:
    if key not in MODELS:  # on ZeroGPU: loaded after this (reused) worker was forked
        raise RuntimeError(
            f"no model loaded under {key!r} in this GPU worker; on ZeroGPU the models are loaded before the app "
            "launches (MISC_PROFILE=full or auto preloads the full profile's)"
        )
    return MODELS[key]


def _progress(progress: Progress | None) -> Progress | None:
    return None if on_zerogpu() else progress


# ----------------------------------------------------------------------------- the GPU steps


@gpu(duration=DESCRIBE_SECONDS)
def describe(key: str, image: Image.Image) -> Any:
    """The registered describer's Description of ``image`` (a VLM or an API)."""
    return _model(key).describe(image)


@gpu(duration=MAPS_SECONDS)
def maps(key: str, image: Image.Image, names: Sequence[str], size: int, threshold: float) -> list[np.ndarray]:
    """CLIP Surgery grids, one per item name."""
    return _model(key).grids(image, list(names), size=size, threshold=threshold)


def decode_seconds(key: str, layers: Any, progress: Progress | None = None) -> int:
    """A duration for ``decode``: ~0.1 s per step per prompt per 512² on an A10G-class GPU,
    plus model transfer and the VAE; clipped to what ZeroGPU allows a request."""
    dec = MODELS.get(key)
    cfg = getattr(dec, "config", None)
    steps = getattr(cfg, "steps", 20) * getattr(cfg, "strength", 1.0)
    prompts = 2 + len(getattr(getattr(layers, "description", None), "items", []) or [])
    pixels = max(1, getattr(layers, "width", 512) * getattr(layers, "height", 512))
    scale = min(pixels, getattr(cfg, "max_side", 1024) ** 2) / 512**2
    estimate = 15 + 0.1 * steps * prompts * scale
    return int(min(DECODE_MAX_SECONDS, max(DECODE_MIN_SECONDS, math.ceil(estimate * 1.5))))


@gpu(duration=decode_seconds)
def decode(key: str, layers: Any, progress: Progress | None = None) -> Any:
    """The registered decoder's DecodeResult (image on the CPU, metadata)."""
    return _model(key).decode(layers, progress=progress)


def call_decode(key: str, layers: Any, progress: Progress | None = None) -> Any:
    """``decode`` with the progress callback only where it can be called (not on ZeroGPU)."""
    return decode(key, layers, _progress(progress))
