"""Classical image codecs (JPEG, WebP, AVIF, JPEG XL) at a byte budget.

MISC is compared with classical codecs *at the same file size*. At 0.005–0.02 bpp no
classical codec reaches the target at full resolution, so the fair baseline is the best
file a careful engineer could make: shrink the image, code it as hard as needed, and
upsample it again on decode. For each downsampling factor we binary-search the codec's
quality for the largest file that still fits, decode it, upsample it (bicubic) to the
original size and keep the setting with the highest PSNR::

    image ─ resize(↓f) ─ encode(q) ─ bytes (≤ budget, whole container file)
                                        │
    decoded ◄─ bicubic(↑f) ◄─ decode ◄──┘        best (f, q) = argmax PSNR

Every size is ``len()`` of the real file the codec writes (JFIF, RIFF/WebP, HEIF/AVIF,
JPEG XL codestream), so headers count. The downsampling factor is not stored in the file:
the original size is side information (``decode_classical(data, codec, size)``), as a
benchmark would keep it, and it is a handful of bytes at most.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

CODECS: tuple[str, ...] = ("jpeg", "webp", "avif", "jxl")
DEFAULT_FACTORS: tuple[float, ...] = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32)

# Search objective only (the benchmark's reported metrics come from metrics/).
_PEAK = 255.0


@dataclass(frozen=True)
class ClassicalResult:
    """The chosen file and what decoding it gives back."""

    codec: str
    data: bytes  # the whole file as the codec wrote it
    image: Image.Image  # decoded and upsampled to the original size, RGB
    factor: float  # downsampling factor (1 = full resolution)
    quality: int  # the codec's quality setting, 0..100 (higher = larger file)
    nbytes: int  # len(data)
    coded_size: tuple[int, int]  # (width, height) of the image inside the file
    psnr: float  # PSNR of `image` against the input (the search objective), dB


@dataclass(frozen=True)
class _Codec:
    name: str
    qmin: int
    qmax: int
    encode: Callable[[Image.Image, int], bytes]
    decode: Callable[[bytes], Image.Image]


# --- the codecs -----------------------------------------------------------------------


def _jpeg_encode(img: Image.Image, q: int) -> bytes:
    """Baseline or progressive, whichever is smaller (progressive often wins on tiny files)."""
    best = b""
    for progressive in (False, True):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q, optimize=True, progressive=progressive, subsampling=2)
        data = buf.getvalue()
        if not best or len(data) < len(best):
            best = data
    return best


def _webp_encode(img: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=q, method=6)
    return buf.getvalue()


def _pil_decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def _pillow_has_avif() -> bool:
    try:
        from PIL import features

        return bool(features.check("avif"))
    except Exception:  # noqa: BLE001 - an old Pillow without the feature name
        return False


AVIF_SPEED = 4  # libaom speed: 4 gave smaller files than 0–2 at these sizes and runs 8× faster


def _avif_encode_pillow(img: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "AVIF", quality=q, speed=AVIF_SPEED, subsampling="4:2:0")
    return buf.getvalue()


def _avif_encode_imagecodecs(img: Image.Image, q: int) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.avif_encode(np.asarray(img), level=q, speed=AVIF_SPEED))


def _avif_decode_imagecodecs(data: bytes) -> Image.Image:
    import imagecodecs

    return Image.fromarray(np.asarray(imagecodecs.avif_decode(data))[..., :3]).convert("RGB")


JXL_EFFORT = 9


def _jxl_encode(img: Image.Image, q: int) -> bytes:
    """Bare JPEG XL codestream (a valid .jxl file); `level` is libjxl's quality → distance."""
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode(np.asarray(img), level=q, effort=JXL_EFFORT, usecontainer=False))


def _jxl_decode(data: bytes) -> Image.Image:
    import imagecodecs

    arr = np.asarray(imagecodecs.jpegxl_decode(data))
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(arr[..., :3].astype(np.uint8)).convert("RGB")


def _imagecodecs_has(name: str) -> bool:
    try:
        import imagecodecs

        return bool(getattr(imagecodecs, name.upper()).available)
    except Exception:  # noqa: BLE001 - missing package or codec
        return False


def _registry() -> dict[str, _Codec | str]:
    """name → codec, or name → the reason it is unavailable."""
    reg: dict[str, _Codec | str] = {
        "jpeg": _Codec("jpeg", 1, 100, _jpeg_encode, _pil_decode),
        "webp": _Codec("webp", 0, 100, _webp_encode, _pil_decode),
    }
    if _pillow_has_avif():
        reg["avif"] = _Codec("avif", 0, 100, _avif_encode_pillow, _pil_decode)
    elif _imagecodecs_has("avif"):
        reg["avif"] = _Codec("avif", 0, 100, _avif_encode_imagecodecs, _avif_decode_imagecodecs)
    else:
        reg["avif"] = "no AVIF encoder: Pillow built without AVIF and imagecodecs lacks it"
    if _imagecodecs_has("jpegxl"):
        reg["jxl"] = _Codec("jxl", 0, 99, _jxl_encode, _jxl_decode)
    else:
        reg["jxl"] = "no JPEG XL encoder: install imagecodecs with libjxl"
    return reg


def available() -> dict[str, str | None]:
    """codec name → None if usable here, else the reason it is not."""
    return {k: (None if isinstance(v, _Codec) else v) for k, v in _registry().items()}


def _get(codec: str) -> _Codec:
    reg = _registry()
    if codec not in reg:
        raise ValueError(f"unknown classical codec {codec!r}; choose one of {', '.join(CODECS)}")
    c = reg[codec]
    if isinstance(c, str):
        raise RuntimeError(f"codec {codec!r} is not available: {c}")
    return c


# --- search ---------------------------------------------------------------------------


def _coded_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    w, h = size
    return max(1, round(w / factor)), max(1, round(h / factor))


def _upsample(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return img if img.size == size else img.resize(size, Image.BICUBIC)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_PEAK**2 / mse)


def decode_classical(data: bytes, codec: str, size: tuple[int, int]) -> Image.Image:
    """Decode a file written by `encode_at_budget` and upsample it (bicubic) to `size`."""
    img = _get(codec).decode(data)
    return _upsample(img, (int(size[0]), int(size[1])))


def _largest_fitting(c: _Codec, small: Image.Image, budget: int) -> tuple[int, bytes] | None:
    """Highest quality whose file fits (binary search; file size grows with quality)."""
    lo_data = c.encode(small, c.qmin)
    if len(lo_data) > budget:
        return None
    hi_data = c.encode(small, c.qmax)
    if len(hi_data) <= budget:
        return c.qmax, hi_data
    lo, hi = c.qmin, c.qmax  # invariant: lo fits, hi does not
    best = lo_data
    while hi - lo > 1:
        mid = (lo + hi) // 2
        data = c.encode(small, mid)
        if len(data) <= budget:
            lo, best = mid, data
        else:
            hi = mid
    return lo, best


def encode_at_budget(
    image: Image.Image,
    budget_bytes: int,
    codec: str,
    factors: Sequence[float] = DEFAULT_FACTORS,
) -> ClassicalResult | None:
    """Best-PSNR file of `codec` whose whole size is ≤ `budget_bytes`, or None if none fits.

    Searches every downsampling factor in `factors` and, per factor, the highest quality
    that fits; the winner is the one whose bicubic-upsampled decode has the highest PSNR
    (ties: the smaller file).
    """
    c = _get(codec)
    rgb = image.convert("RGB")
    size = rgb.size
    ref = np.asarray(rgb)
    best: ClassicalResult | None = None
    seen: set[tuple[int, int]] = set()
    for factor in factors:
        csize = _coded_size(size, float(factor))
        if csize in seen:  # tiny images: several factors round to the same size
            continue
        seen.add(csize)
        small = rgb if csize == size else rgb.resize(csize, Image.LANCZOS)
        found = _largest_fitting(c, small, int(budget_bytes))
        if found is None:
            continue
        q, data = found
        decoded = _upsample(c.decode(data), size)
        psnr = _psnr(ref, np.asarray(decoded))
        cand = ClassicalResult(codec, data, decoded, float(factor), q, len(data), csize, psnr)
        if best is None or psnr > best.psnr or (psnr == best.psnr and cand.nbytes < best.nbytes):
            best = cand
    return best


def budget_for_bpp(size: tuple[int, int], bpp: float) -> int:
    """Whole bytes allowed at `bpp` bits per pixel of an image of `size` (rounded down)."""
    return int(math.floor(bpp * size[0] * size[1] / 8.0))
