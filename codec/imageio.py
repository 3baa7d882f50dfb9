"""Reading input images into the one form the codec works on.

Whatever arrives (a path, bytes, a PIL image in any mode, with EXIF rotation, 16-bit,
palette, alpha) leaves as an 8-bit RGB image plus a flag saying whether the source was
grayscale, or as an ImageInputError that says what was wrong. Limits are checked before
the pixels are decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageInputError
from .limits import DEFAULT_MAX_PIXELS
from .limits import max_pixels as _limit

__all__ = ["DEFAULT_MAX_PIXELS", "load_rgb", "open_image", "to_rgb8"]
MIN_SIDE = 8

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def open_image(source: str | os.PathLike | bytes | Image.Image, max_pixels: int | None = None) -> Image.Image:
    """Open an image from a path, bytes or a PIL image, checking its size before decoding.
    ``max_pixels``: None means the process's limit (codec.limits: MISC_MAX_PIXELS, 1 Mpx)."""
    max_pixels = _limit(max_pixels)
    if isinstance(source, Image.Image):
        img = source
    else:
        try:
            if isinstance(source, bytes | bytearray):
                fp = io.BytesIO(source)
                label = "uploaded data"
            else:
                fp = Path(source)
                label = str(source)
                if not fp.is_file():
                    raise ImageInputError(f"no such image file: {label}")
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(fp)
                _check_size(img.width, img.height, max_pixels)
                img.load()
        except ImageInputError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageInputError(f"not a readable image ({label}): {e}") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageInputError(f"the image is truncated or corrupt ({label}): {e}") from e
    _check_size(img.width, img.height, max_pixels)
    return img


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageInputError(f"image is {width}x{height}: too small, each side must be at least {MIN_SIDE} pixels")
    if width * height > max_pixels:
        raise ImageInputError(
            f"image is {width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,} "
            "(raise it with MISC_MAX_PIXELS or --max-pixels)"
        )


def to_rgb8(img: Image.Image) -> tuple[Image.Image, bool]:
    """8-bit RGB and whether the source had a single channel.

    EXIF orientation is applied; transparency is composited over white (what a viewer
    shows); 16-bit and float samples are scaled, not clipped, to 8 bits.
    """
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop coding: orientation stays as stored
        pass
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA" if ("transparency" in img.info or img.mode == "PA") else "RGB")
    gray = img.mode in _GRAY_MODES
    if img.mode in {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}:
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            scale = 255.0 if arr.size and np.nanmax(arr) <= 1.0 else 1.0
        else:
            scale = 255.0 / 65535.0 if arr.size and arr.max() > 255 else 1.0
        arr = np.clip(np.nan_to_num(arr * scale), 0, 255)
        img = Image.fromarray(np.round(arr).astype(np.uint8), "L")
    if img.mode in {"RGBA", "LA", "La", "RGBa"}:
        base = Image.new("RGBA", img.size, (255, 255, 255, 255))
        base.alpha_composite(img.convert("RGBA"))
        img = base
    img = img.convert("RGB")
    if not gray:
        arr = np.asarray(img)
        gray = bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())
    return img, gray


def load_rgb(source, max_pixels: int | None = None) -> tuple[Image.Image, bool]:
    """open_image + to_rgb8: the codec's single entry for input pictures."""
    return to_rgb8(open_image(source, max_pixels))
