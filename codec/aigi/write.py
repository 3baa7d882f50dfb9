"""Writing a recipe into an image file the way the generators do (A1111-style PNG/JPEG/WebP).

Used by the AIGI set builder (bench.aigi) and by the tests, which write their own sample
metadata in the documented formats rather than copy anyone's files.
"""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

from .formats import format_a1111
from .recipe import Recipe


def png_with_recipe(image: Image.Image, recipe: Recipe, extra_text: dict[str, str] | None = None) -> bytes:
    """PNG bytes with A1111's tEXt 'parameters' chunk (plus any other text chunks given)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", format_a1111(recipe))
    for k, v in (extra_text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def user_comment(text: str) -> bytes:
    """EXIF UserComment as A1111 writes it (piexif's 'unicode': UNICODE\\0 + UTF-16 big-endian)."""
    return b"UNICODE\x00" + text.encode("utf-16-be")


def jpeg_with_recipe(image: Image.Image, recipe: Recipe, fmt: str = "JPEG") -> bytes:
    """JPEG (or WebP with ``fmt='WEBP'``) with the parameters in EXIF UserComment."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = user_comment(format_a1111(recipe))
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt, exif=exif.tobytes(), quality=90)
    return buf.getvalue()
