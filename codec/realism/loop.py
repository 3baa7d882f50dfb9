"""Decoder-in-the-loop choice of the pixel payload, the detail level and the seed.

    rate control (codec.pixel) ─▶ payloads that fit, ranked by bicubic PSNR
        top N ─▶ proxy decode (centre crop, the file's own decoder) ─▶ U(R) at α₀(R)
        best  ─▶ α grid on the same proxy decode ─▶ α*
        (R = 0, full_alpha) best decoded in full ─▶ α* = its least-squares level
        (stochastic decoder, K > 1) ─▶ K seeds decoded on the proxy ─▶ seed*
    ─▶ (payload, α*, seed*): the file stores the payload, α* (REALISM section) and seed*

The proxy is the decoder run on a centre crop of the pixel layer (a quarter of the
picture by default: a quarter of the decode's cost); its rank agreement with the full
decode is measured in docs/REALISM.md (`python -m bench.realism proxy`). Decodes are
cached per payload and seed (``cache``), so trying several R on one image decodes each
candidate once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from ..bitstream import varint
from ..pixel import PixelChoice, decode_pixels
from ..records import DecodedLayers
from .detail import apply_detail, quantize
from .score import Perceptual, Score, check_realism, psnr, texture_distance, utility

DEFAULT_REALISM = 0.0  # measured on Kodak24 at 0.01 bpp (docs/REALISM.md): best PSNR, no hallucination, 1.9x the encode time
ALPHAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def prior_alpha(realism: float) -> float:
    """Detail level a candidate is first scored at: the α grid point nearest 0.25 + R
    (measured: PSNR peaks near α = 0.25, DISTS keeps falling up to 1.5; docs/REALISM.md)."""
    return min(ALPHAS, key=lambda a: abs(a - (0.25 + realism)))


@dataclass
class LoopConfig:
    """How hard the encoder looks. Defaults: docs/REALISM.md's speed table."""

    realism: float = DEFAULT_REALISM
    candidates: int = 3  # payloads (best bicubic PSNR first) decoded by the proxy
    crop: float = 0.3  # proxy: centre crop, this fraction of each side (1.0: the full decode)
    alphas: tuple[float, ...] = ALPHAS
    seeds: int = 1  # K: seeds tried when the decoder is stochastic (1: the file's seed only)
    # R = 0: the chosen payload decoded in full once more, and α set to that decode's least
    # squares (the crop's α can be far from the picture's): +0.1 dB on Kodak24 at 0.01 bpp,
    # but one full decode (4.4x today's encode at 512² on a 2-core CPU, docs/REALISM.md), so
    # off by default; `--full-alpha` (codec CLI, bench run) turns it on.
    full_alpha: bool = False

    def __post_init__(self) -> None:
        self.realism = check_realism(self.realism)
        if not (isinstance(self.candidates, int) and self.candidates >= 1):
            raise ValueError(f"candidates must be a positive integer, got {self.candidates!r}")
        if not 0.05 <= float(self.crop) <= 1.0:
            raise ValueError(f"crop must be from 0.05 to 1 (a fraction of each side), got {self.crop!r}")
        if not (isinstance(self.seeds, int) and 1 <= self.seeds <= 128):
            raise ValueError(f"seeds must be an integer from 1 to 128 (one-byte seeds), got {self.seeds!r}")
        if not self.alphas or any(not 0 <= a <= 15.9375 for a in self.alphas):
            raise ValueError(f"alphas must be detail levels from 0 to 15.9375, got {self.alphas!r}")


@dataclass
class LoopChoice:
    pixel: PixelChoice
    alpha: float
    seed: int | None
    score: Score
    realism: float = 0.0
    tried: list[dict[str, Any]] = field(default_factory=list)  # every proxy score, for reports
    decodes: int = 0  # proxy decodes run (cache hits not counted)
    seconds: float = 0.0


def is_stochastic(decoder: Any) -> bool:
    """Whether the decoder's picture depends on the seed (diffusion, upscale)."""
    return bool(getattr(decoder, "stochastic", False)) or str(getattr(decoder, "name", "")).split("/")[0] in (
        "diffusion", "upscale",
    )  # fmt: skip


def seed_candidates(seed: int, k: int) -> list[int]:
    """``seed`` and the next seeds whose varint is as long as its own, at most ``k`` in all:
    whichever wins, the file keeps its size to the byte."""
    n = len(varint(seed))
    return [s for s in range(seed, seed + k) if len(varint(s)) == n]


def crop_boxes(size: tuple[int, int], lowres_size: tuple[int, int], frac: float):
    """(pixel-layer box, picture box) of the centre crop, aligned to whole pixel-layer pixels."""
    (w, h), (lw, lh) = size, lowres_size
    if frac >= 1.0:
        return (0, 0, lw, lh), (0, 0, w, h)
    cw, ch = max(2, round(lw * frac)), max(2, round(lh * frac))
    lx0, ly0 = (lw - cw) // 2, (lh - ch) // 2
    lbox = (lx0, ly0, lx0 + cw, ly0 + ch)
    return lbox, (round(lx0 * w / lw), round(ly0 * h / lh), round((lx0 + cw) * w / lw), round((ly0 + ch) * h / lh))


@dataclass
class ProxyDecode:
    """One candidate decoded on the proxy region, with what it is scored against."""

    reference: Image.Image  # the original, cropped
    decoded: Image.Image  # the decoder's picture of the region
    bicubic: Image.Image  # the pixel layer's bicubic upsampling of the region
    bicubic_db: float

    def mse_alpha(self) -> float:
        """The α of least squared error (closed form: the projection of O − B on D − B),
        within [0, 1.5]: the most faithful detail level, free to compute."""
        b = np.asarray(self.bicubic, np.float64)
        d = np.asarray(self.decoded, np.float64) - b
        o = np.asarray(self.reference, np.float64) - b
        dd = float((d * d).sum())
        return 0.0 if dd == 0 else min(1.5, max(0.0, float((d * o).sum()) / dd))

    def score(self, realism: float, alpha: float, perceptual: Perceptual | None) -> Score:
        img = apply_detail(self.decoded, self.bicubic, alpha)
        perc = (perceptual or texture_distance)(self.reference, img) if realism > 0 else None
        return utility(realism, psnr(np.asarray(img), np.asarray(self.reference)), perc, self.bicubic_db)


def decode_region(rgb: Image.Image, payload: bytes, decoder: Any, layers: DecodedLayers, crop: float,
                  seed: int) -> ProxyDecode:  # fmt: skip
    """The decoder's picture of the centre crop (``crop`` of each side; 1: the whole picture)
    from this payload: the same decoder on the cropped pixel layer, maps dropped (they
    describe the whole picture)."""
    low = decode_pixels(payload)
    lbox, box = crop_boxes(rgb.size, low.size, crop)
    sub = replace(layers, width=box[2] - box[0], height=box[3] - box[1], lowres=low.crop(lbox), seed=seed,
                  maps=None if crop < 1 else layers.maps)  # fmt: skip
    img = decoder.decode(sub).image.convert("RGB")
    ref = rgb.crop(box)
    bic = low.crop(lbox).resize(ref.size, Image.Resampling.BICUBIC)
    return ProxyDecode(ref, img, bic, psnr(np.asarray(bic), np.asarray(ref)))


def choose(
    rgb: Image.Image,
    pixel: PixelChoice,
    decoder: Any,
    config: LoopConfig,
    *,
    layers: DecodedLayers,
    perceptual: Perceptual | None = None,
    cache: dict | None = None,
) -> LoopChoice:
    """The payload among ``pixel.alternatives``, the detail level and the seed that maximise
    U(R) on the proxy decode. ``layers``: the file's other layers (size, seed, text, maps),
    whose pixel layer is replaced by each candidate's."""
    t0 = time.perf_counter()
    r = config.realism
    cache = {} if cache is None else cache
    counter = [0]
    fingerprint = _fingerprint(rgb)
    pool = (pixel.alternatives or [pixel])[: config.candidates]
    tried: list[dict[str, Any]] = []

    def decoded(cand: PixelChoice, seed: int, crop: float = config.crop) -> ProxyDecode:
        key = (id(decoder), cand.payload, seed, crop, fingerprint)
        if key not in cache:
            cache[key] = decode_region(rgb, cand.payload, decoder, layers, crop, seed)
            counter[0] += 1
        return cache[key]

    def score(cand: PixelChoice, seed: int, alpha: float) -> Score:
        s = decoded(cand, seed).score(r, alpha, perceptual)
        tried.append({"factor": cand.factor, "family": cand.family, "level": cand.level, "seed": seed,
                      "alpha": alpha, **s.as_dict()})  # fmt: skip
        return s

    seed0 = layers.seed
    a0 = quantize(prior_alpha(r))
    best = max(pool, key=lambda c: score(c, seed0, a0).utility)
    # The grid, plus the least-squares level (what R = 0 wants, finer than the grid). At
    # R = 0 a level costs a PSNR (all are scored); otherwise each costs a perceptual score,
    # so climb from the prior level to the better neighbour while the score improves
    # (U is close to unimodal in α: measured, docs/REALISM.md).
    levels = sorted(dict.fromkeys(quantize(a) for a in (*config.alphas, decoded(best, seed0).mse_alpha())))
    if r == 0:
        alpha, best_score = max(((a, score(best, seed0, a)) for a in levels), key=lambda t: t[1].utility)
    else:
        alpha, best_score = _climb(levels, a0, lambda a: score(best, seed0, a))
    seed = seed0
    if config.seeds > 1 and is_stochastic(decoder):
        seed, best_score = max(((s, score(best, s, alpha)) for s in seed_candidates(seed0, config.seeds)),
                               key=lambda t: t[1].utility)  # fmt: skip
    if r == 0 and config.full_alpha and config.crop < 1.0:
        whole = decoded(best, seed, 1.0)
        alpha = quantize(whole.mse_alpha())
        best_score = whole.score(r, alpha, perceptual)
        tried.append({"factor": best.factor, "family": best.family, "level": best.level, "seed": seed,
                      "alpha": alpha, "full": True, **best_score.as_dict()})  # fmt: skip
    return LoopChoice(best, alpha, seed, best_score, r, tried, counter[0], time.perf_counter() - t0)


def _climb(levels: list[float], start: float, f) -> tuple[float, Score]:
    """Hill-climb over sorted ``levels`` from ``start``: the local best and its score."""
    memo: dict[int, Score] = {}

    def at(i: int) -> Score:
        if i not in memo:
            memo[i] = f(levels[i])
        return memo[i]

    i = min(range(len(levels)), key=lambda j: abs(levels[j] - start))
    while True:
        nbrs = [j for j in (i - 1, i + 1) if 0 <= j < len(levels)]
        j = max(nbrs, key=lambda k: at(k).utility, default=i)
        if at(j).utility <= at(i).utility:
            return levels[i], at(i)
        i = j


def _fingerprint(rgb: Image.Image) -> int:
    """Cheap key for the source picture (a cache shared across images must not mix them)."""
    return hash((rgb.size, np.asarray(rgb)[::7, ::7].tobytes()))
