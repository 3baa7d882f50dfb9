"""The pixel layer: a heavily downsampled copy of the image as one raw AV1 intra frame.

    image ─▶ downsample ÷f ─▶ SVT-AV1 (one key frame) ─▶ OBUs, temporal delimiter dropped
                          ─▶ compact form (codec.obu: sequence header dropped) ─▶ PIXEL section
    PIXEL section ─▶ (sequence header rebuilt) ─▶ dav1d ─▶ low-resolution RGB ─▶ (a decoder brings it to full size)

At 100-600 bytes per image a container would eat most of the budget (OFFLINE.md: AVIF
adds ~275 B), so the section holds the bare OBUs; the frame size travels in AV1's own
sequence header, and the original size in the file header, so the downsampling factor
is implied. That sequence header is itself ~12 bytes that only restate how SVT-AV1 is
driven here, so it is rebuilt by the decoder instead of stored (codec.obu, the compact
form: 10-13 bytes saved per file, 4 % of a 0.01 bpp file at 500², 9 % at 0.005 bpp).

Rate control (`encode_pixels`) searches the downsampling factor and the quantiser for
the payload that fits the bytes left by the other layers and scores best under the
decoder's objective. Two quantiser families are searched, because SVT-AV1 overrides its
CRF below 64 px and there a fixed q-index gives far smaller files (OFFLINE.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from . import obu
from .bitstream import SectionType
from .errors import BitstreamError, BudgetError
from .rtguard import no_realtime

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner on every encoder otherwise

TEMPORAL_DELIMITER = b"\x12\x00"
MIN_LOWRES_SIDE = 8  # SVT-AV1 refuses frames below 4 px; below 8 px nothing useful survives
FACTORS: tuple[float, ...] = (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64)
PATIENCE = 3  # factors without improvement before the search stops (see _search)
PRESET = 4  # slower presets gave no smaller files; faster ones gave up to 50% larger (measured)

# Quantiser families: (name, number of levels). Level 0 is the coarsest; files grow with it.
FAMILIES = {"crf": 63, "qindex": 200}


@dataclass
class PixelChoice:
    """The payload rate control picked, and how it got there."""

    payload: bytes
    lowres_size: tuple[int, int]
    factor: float
    family: str
    level: int
    score: float = float("nan")
    candidates_tried: int = 0
    factors_hint_used: bool = True
    # Every payload the search scored (this one included), best first: what a decoder-in-the-
    # loop search (codec.realism) chooses among without encoding again.
    alternatives: list[PixelChoice] = field(default_factory=list, repr=False, compare=False)

    @property
    def nbytes(self) -> int:
        return len(self.payload)


Scorer = Callable[[Image.Image, Image.Image], float]


# ----------------------------------------------------------------------------- AV1 in and out


def _svt_options(family: str, level: int) -> dict[str, str]:
    # lp=1: one frame needs no thread pool, and on a loaded 2-core machine SVT-AV1's pool
    # made a 100x66 frame take seconds of waiting instead of 0.2 s (measured).
    if family == "crf":
        return {"preset": str(PRESET), "crf": str(63 - level), "svtav1-params": "lp=1"}
    # q-index family: qp sets the base q-index (qp 63 -> 255) and the key-frame offset walks
    # between the qp steps, so each level is about one q-index step.
    qp, offset = 63 - level // 4, -(level % 4)
    return {
        "preset": str(PRESET),
        "svtav1-params": f"lp=1:rc=0:use-fixed-qindex-offsets=1:key-frame-qindex-offset={offset}:qp={qp}",
    }


def encode_av1(lowres: Image.Image, family: str = "crf", level: int = 0) -> bytes:
    """One intra frame: its compact form (codec.obu), or, when SVT-AV1 wrote a sequence
    header the compact form does not rebuild, the raw AV1 OBUs without the temporal delimiter."""
    if family not in FAMILIES or not 0 <= level < FAMILIES[family]:
        raise ValueError(f"unknown quantiser {family}:{level}")
    # SVT-AV1 makes the thread that opens it (and its own threads) SCHED_FIFO 99 when it
    # may (codec/rtguard.py): open, encode and free the encoder inside the guard.
    with no_realtime():
        cc = av.CodecContext.create("libsvtav1", "w")
        cc.width, cc.height = lowres.size
        cc.pix_fmt = "yuv420p"
        cc.time_base = Fraction(1, 25)
        cc.framerate = Fraction(25, 1)
        cc.options = _svt_options(family, level)
        cc.thread_count = 1
        frame = av.VideoFrame.from_image(lowres.convert("RGB")).reformat(format="yuv420p")
        frame.pts = 0
        data = b"".join(bytes(p) for p in [*cc.encode(frame), *cc.encode(None)])
        del cc
    if data.startswith(TEMPORAL_DELIMITER):
        data = data[len(TEMPORAL_DELIMITER) :]
    return obu.compact(data, lowres.size) or data


def section_type(payload: bytes) -> SectionType:
    """The PIXEL section type that holds ``payload`` (compact or raw form)."""
    return SectionType.PIXEL_AV1_COMPACT if obu.is_compact(payload) else SectionType.PIXEL_AV1


def decode_pixels(
    payload: bytes, expect_max_side: int | None = None, max_pixels: int | None = None, compact: bool | None = None
) -> Image.Image:
    """PIXEL section → low-resolution RGB image. Raises BitstreamError on a bad payload.
    ``max_pixels``: dav1d refuses a larger frame before allocating it (the AV1 sequence
    header names its own size, which a hostile file sets as it likes). ``compact``: the
    form the file's section type says (None: the payload's first byte says, for payloads
    this process made)."""
    if not payload:
        raise BitstreamError("pixel section is empty")
    if compact is None:
        compact = obu.is_compact(payload)
    if compact:
        payload, (w, h) = obu.expand(payload, max_pixels)
        if expect_max_side is not None and max(w, h) > expect_max_side:
            raise BitstreamError("pixel layer is larger than the image it belongs to")
    elif obu.is_compact(payload):
        raise BitstreamError("raw pixel section starts with an invalid OBU header (forbidden bit set)")
    try:
        dec = av.CodecContext.create("libdav1d", "r")
        # One thread: with worker threads, some damaged payloads deadlock dav1d against
        # the GIL when the context is freed (a worker waits for the GIL in PyAV's buffer
        # callback while the main thread holds it in dav1d_flush). One frame needs none.
        dec.thread_count = 1
        if max_pixels:
            dec.options = {"max_pixels": str(max_pixels)}
        frames = [*dec.decode(av.Packet(TEMPORAL_DELIMITER + payload)), *dec.decode(None)]
    except (av.FFmpegError, ValueError) as e:
        raise BitstreamError(f"pixel section is not a decodable AV1 frame: {e}") from e
    if len(frames) != 1:
        raise BitstreamError(f"pixel section holds {len(frames)} frames, expected 1")
    frame = frames[0]
    if expect_max_side is not None and max(frame.width, frame.height) > expect_max_side:
        raise BitstreamError("pixel layer is larger than the image it belongs to")
    return frame.to_image().convert("RGB")


# ----------------------------------------------------------------------------- resampling


def lowres_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    w, h = size
    return max(1, round(w / factor)), max(1, round(h / factor))


def downsample(img: Image.Image, factor: float) -> Image.Image:
    size = lowres_size(img.size, factor)
    return img if size == img.size else img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def upsample_bicubic(lowres: Image.Image, size: tuple[int, int]) -> Image.Image:
    return lowres if lowres.size == size else lowres.resize(size, Image.Resampling.BICUBIC)


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def bicubic_psnr(decoded_lowres: Image.Image, original: Image.Image) -> float:
    """Default objective: PSNR of the bicubic-upsampled pixel layer against the source."""
    return psnr(upsample_bicubic(decoded_lowres, original.size), original)


# ----------------------------------------------------------------------------- rate control


def usable_factors(size: tuple[int, int], factors: Sequence[float] = FACTORS) -> list[float]:
    return [f for f in factors if min(lowres_size(size, f)) >= MIN_LOWRES_SIDE]


def _fit(lowres: Image.Image, family: str, budget: int, cache: dict, top: int | None = None) -> tuple[bytes, int] | None:
    """Highest level (at most `top`) of one family whose payload fits `budget`: a binary
    search, since sizes grow with the level almost monotonically; whatever it returns has
    been encoded and measured, so it always fits."""

    def at(level: int) -> bytes:
        key = (lowres.size, family, level)
        if key not in cache:
            cache[key] = encode_av1(lowres, family, level)
        return cache[key]

    lo, hi = 0, FAMILIES[family] - 1 if top is None else min(top + 1, FAMILIES[family] - 1)
    if len(at(lo)) > budget:
        return None
    if len(at(hi)) <= budget:
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if len(at(mid)) <= budget:
            lo = mid
        else:
            hi = mid
    return at(lo), lo


def smallest_payload(image: Image.Image, factors: Sequence[float] = FACTORS) -> int:
    """Bytes of the smallest pixel payload the codec can make for this image."""
    fs = usable_factors(image.size, factors) or [max(factors)]
    small = downsample(image, fs[-1])
    return min(len(encode_av1(small, fam, 0)) for fam in FAMILIES)


def encode_pixels(
    image: Image.Image,
    budget_bytes: int,
    factors: Sequence[float] | None = None,
    scorer: Scorer | None = None,
    fallback_factors: Sequence[float] | None = None,
) -> PixelChoice:
    """Best pixel payload of at most `budget_bytes`, searched over factor and quantiser.

    `factors` restricts the search to what the intended decoder likes (e.g. ÷4 for a ×4
    super-resolution decoder); when none of them fits, the whole factor set is searched
    and the choice says so. `scorer(decoded_lowres, original)` ranks candidates (higher
    is better; default: PSNR after bicubic upsampling).
    """
    scorer = scorer or bicubic_psnr
    rgb = image.convert("RGB")
    cache: dict = {}
    choice = None
    tiers = [FACTORS] if not factors else [factors, *([fallback_factors] if fallback_factors else []), FACTORS]
    for tier_factors in tiers:
        choice = _search(rgb, budget_bytes, usable_factors(rgb.size, tier_factors), scorer, cache)
        if choice is not None:
            break
    hint_used = tier_factors is tiers[0]
    if choice is None:
        smallest = smallest_payload(rgb)
        raise BudgetError(
            f"{budget_bytes} bytes are not enough for any pixel layer of this image; the smallest is {smallest} bytes",
            minimum_bytes=smallest,
        )
    choice.candidates_tried = len(cache)
    choice.factors_hint_used = hint_used
    choice.alternatives.sort(key=lambda c: -c.score)
    return choice


def _search(rgb: Image.Image, budget: int, factors: list[float], scorer: Scorer, cache: dict) -> PixelChoice | None:
    """Walk from the coarsest downsampling to the finest; stop at the first factor whose
    coarsest quantiser no longer fits, since every finer factor is larger still. A finer
    factor cannot afford a finer quantiser than the coarser factor before it did, which
    bounds each binary search from above.
    The score is close to unimodal in the factor (too coarse loses detail, too fine
    loses to quantisation), so the walk also stops after PATIENCE factors in a row that
    did not improve on the best; those finer factors are also the slowest to encode.
    """
    best: PixelChoice | None = None
    scored: list[PixelChoice] = []
    top: dict[str, int | None] = dict.fromkeys(FAMILIES)
    since_best = 0
    with _family_pool() as pool:
        for factor in sorted(factors, reverse=True):
            if since_best >= PATIENCE:
                break
            since_best += 1
            small = downsample(rgb, factor)
            # The families' searches are independent encodes: run them side by side.
            # Scoring stays in this thread (a decoder's scorer may hold a model).
            fits = pool.map(lambda fam, small=small: _fit(small, fam, budget, cache, top[fam]), FAMILIES)
            fitted = False
            for family, fit in zip(FAMILIES, fits, strict=True):
                if fit is None:
                    continue
                fitted = True
                payload, level = fit
                top[family] = level
                score = scorer(decode_pixels(payload), rgb)
                scored.append(PixelChoice(payload, small.size, factor, family, level, score=score))
                if best is None or score > best.score:
                    best = scored[-1]
                    since_best = 0
            if not fitted:
                break
    if best is not None:
        best.alternatives = scored
    return best


def _family_pool() -> ThreadPoolExecutor:
    """Threads for the quantiser families' searches. SVT-AV1 runs with lp=1 and PyAV
    releases the GIL while it encodes, so two families take ~1.7x less wall time on two
    cores; the choice is the same as serially (the searches share no state but the cache,
    whose keys differ per family). MISC_ENCODE_THREADS=1: one family at a time."""
    threads = int(os.environ.get("MISC_ENCODE_THREADS", min(len(FAMILIES), os.cpu_count() or 1)))
    return ThreadPoolExecutor(max(1, threads), thread_name_prefix="misc-av1")
