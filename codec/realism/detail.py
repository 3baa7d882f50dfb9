"""The detail level a file asks of its decoder, and the REALISM section that carries it.

    decoded picture D, pixel layer L ─▶ B = bicubic(L) ─▶ B + α·(D − B)

α = 1 is the decoder's own picture (what every file without the section gets), α = 0 the
plain bicubic upsampling, 0 < α < 1 keeps part of the decoder's invented detail (its
errors and the bicubic's are partly independent, so a blend beats both on PSNR), α > 1
sharpens further (DISTS rewards it). The encoder picks α by decoding (codec.realism.loop);
the decoder cannot know it, so it is stored: one byte, α = byte / 16 (0 … 15.94).
Section type 33 is ancillary: readers older than it skip it and show the decoder's own
picture (docs/FORMAT.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import BitstreamError

SECTION_TYPE = 33  # codec.bitstream.SectionType.REALISM
STEPS_PER_UNIT = 16


def quantize(alpha: float) -> float:
    """α as the file stores it."""
    return min(255, max(0, round(alpha * STEPS_PER_UNIT))) / STEPS_PER_UNIT


def pack_detail(alpha: float) -> bytes:
    return bytes([min(255, max(0, round(alpha * STEPS_PER_UNIT)))])


def unpack_detail(payload: bytes) -> float:
    if len(payload) != 1:
        raise BitstreamError(f"realism section must hold 1 byte, not {len(payload)}")
    return payload[0] / STEPS_PER_UNIT


def apply_detail(image: Image.Image, base: Image.Image, alpha: float) -> Image.Image:
    """B + α·(D − B), rounded and clipped to 8 bits; same mode as ``image``."""
    if alpha == 1.0:
        return image
    mode = image.mode
    d = np.asarray(image.convert("RGB"), dtype=np.float32)
    b = np.asarray(base.convert("RGB").resize(image.size, Image.Resampling.BICUBIC), dtype=np.float32)
    out = Image.fromarray(np.clip(np.rint(b + alpha * (d - b)), 0, 255).astype(np.uint8), "RGB")
    return out.convert(mode) if mode != "RGB" else out
