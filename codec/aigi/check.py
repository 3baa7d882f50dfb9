"""The regeneration check: does a regenerated picture agree with the file's pixel layer?

    source ──shrink to the pixel layer's size──▶ PSNR against the decoded pixel layer = check_db
    regenerated ──same shrink──────────────────▶ PSNR against the same pixel layer   = got_db

The encoder stores check_db (how far its own pixel layer is from the source, at that size);
the decoder accepts the regenerated picture when got_db >= check_db - margin. A picture from
another model version, another GPU or other settings differs everywhere and lands far below.
The shrink is the encoder's own downsampling filter, so both sides measure the same way.
"""

from __future__ import annotations

from PIL import Image

from ..pixel import psnr

DEFAULT_MARGIN_DB = 3.0


def shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    image = image.convert("RGB")
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def check_psnr(image: Image.Image, lowres: Image.Image) -> float:
    """PSNR (dB) of ``image`` shrunk to the pixel layer's size against the pixel layer."""
    lowres = lowres.convert("RGB")
    return psnr(shrink(image, lowres.size), lowres)


def agrees(got_db: float, check_db: float, margin_db: float = DEFAULT_MARGIN_DB) -> bool:
    return got_db >= min(check_db, 63.75) - margin_db
