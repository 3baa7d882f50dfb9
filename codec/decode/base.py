"""What every decoder shares: the interface, output shaping, and the colour fix.

A decoder is any object with a ``name`` and ``decode(layers, progress=None)``; it gets
nothing but what the file holds (:class:`~codec.records.DecodedLayers`) and must return
an image of exactly the original size and mode, so callers never special-case decoders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ..errors import BitstreamError
from ..records import DecodedLayers, DecodeResult

Progress = Callable[[float, str], None]


@runtime_checkable
class Decoder(Protocol):
    name: str

    def decode(self, layers: DecodedLayers, progress: Progress | None = None) -> DecodeResult: ...


def report(progress: Progress | None, fraction: float, message: str) -> None:
    """Call the progress callback if there is one (fraction clipped to [0, 1])."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def require_lowres(layers: DecodedLayers) -> Image.Image:
    """The pixel layer as RGB; every decoder here starts from it."""
    if layers.lowres is None:
        raise BitstreamError("the file has no pixel layer; these decoders need one")
    if layers.width <= 0 or layers.height <= 0:
        raise BitstreamError(f"invalid output size {layers.width}x{layers.height}")
    return layers.lowres.convert("RGB")


def upsample(lowres: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Bicubic resize of the pixel layer to ``size`` (the baseline every decoder refines)."""
    return lowres.convert("RGB").resize(size, Image.Resampling.BICUBIC)


def finish(image: Image.Image, layers: DecodedLayers) -> Image.Image:
    """Exact original size, and one channel when the source had one."""
    size = (layers.width, layers.height)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image.convert("L") if layers.grayscale else image.convert("RGB")


# ---------------------------------------------------------------------------------------
# Colour fix. Generative and GAN decoders drift in colour; MISC (through DiffBIR, after
# StableSR) puts the low frequencies of the pixel layer back under the decoder's high
# frequencies. The pixel layer is the only colour information the file carries, so the
# decoded picture should agree with it at coarse scales.

_WAVELET_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 16.0


def _wavelet_blur(x: np.ndarray, radius: int) -> np.ndarray:
    """3×3 binomial blur dilated by ``radius`` (à trous), edges replicated; x is HxWxC."""
    padded = np.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            dy, dx = i * radius, j * radius
            out += _WAVELET_KERNEL[i, j] * padded[dy : dy + h, dx : dx + w]
    return out


def wavelet_decompose(x: np.ndarray, levels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Split into (high, low) frequencies with ``levels`` à-trous wavelet levels."""
    high = np.zeros_like(x)
    for level in range(levels):
        low = _wavelet_blur(x, 2**level)
        high += x - low
        x = low
    return high, x


def color_fix(
    image: Image.Image, reference: Image.Image, method: str = "wavelet", levels: int = 5
) -> Image.Image:
    """Give ``image`` the colours of ``reference`` (resized to match).

    ``wavelet``: the decoder's high frequencies over the reference's low frequencies
    (StableSR/DiffBIR's wavelet colour fix). ``adain``: per-channel mean and standard
    deviation matched to the reference. ``none``: unchanged.
    """
    if method == "none":
        return image
    img = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    ref_img = reference.convert("RGB")
    if ref_img.size != image.size:
        ref_img = ref_img.resize(image.size, Image.Resampling.BICUBIC)
    ref = np.asarray(ref_img, dtype=np.float32) / 255.0
    if method == "wavelet":
        high, _ = wavelet_decompose(img, levels)
        _, low = wavelet_decompose(ref, levels)
        out = high + low
    elif method == "adain":
        mu, sd = img.mean(axis=(0, 1)), img.std(axis=(0, 1)) + 1e-6
        rmu, rsd = ref.mean(axis=(0, 1)), ref.std(axis=(0, 1))
        out = (img - mu) / sd * rsd + rmu
    else:
        raise ValueError(f"unknown colour fix {method!r}; use 'wavelet', 'adain' or 'none'")
    return Image.fromarray(np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), "RGB")
