"""How many bits the grid coder spends on typical item maps, against MISC's raw 64.

    python -m codec.maps.bench [--images 500] [--items 3] [--size 8] [--seed 0]
    python -m codec.maps.bench --fit-priors      # re-derive grid_coder.PRIORS

No real CLIP Surgery maps can be made offline (no CLIP weights), so the maps here are
synthetic and say so: smooth random fields shaped like similarity maps (a few soft blobs
over a faint smooth background, and low-pass filtered noise), min-max normalised and
turned into grids exactly as real maps are (``to_grid``: 8-bit, anti-aliased shrink,
threshold 0.35). Each "image" gets ``--items`` maps coded together in one MAPS payload;
the figure is the payload's real size in bits (header and termination included) divided
by the number of items.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.ndimage import gaussian_filter

from .grid_coder import N_CONTEXTS, PRIOR_STRENGTH, compress_grids, context, decompress_grids
from .grids import DEFAULT_THRESHOLD, to_grid


def blob_map(rng: np.random.Generator, side: int = 224) -> np.ndarray:
    """One to three soft elliptical blobs over a faint smooth background, in [0, 1]."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    m = np.zeros((side, side))
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0, 1, 2)
        sy, sx = rng.uniform(0.06, 0.3, 2)
        m += rng.uniform(0.5, 1.0) * np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2) / 2)
    noise = gaussian_filter(rng.standard_normal((side, side)), side / 20)
    m += 0.15 * noise / (np.abs(noise).max() + 1e-12)
    return (m - m.min()) / (m.max() - m.min())


def field_map(rng: np.random.Generator, side: int = 224) -> np.ndarray:
    """Low-pass filtered white noise (a random smooth landscape), in [0, 1]."""
    m = gaussian_filter(rng.standard_normal((side, side)), rng.uniform(side / 18, side / 6))
    return (m - m.min()) / (m.max() - m.min())


FAMILIES = {"blobs": blob_map, "fields": field_map}


def synthetic_grids(family: str, n: int, size: int = 8, seed: int = 0, side: int = 224) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    make = FAMILIES[family]
    return [to_grid(make(rng, side), size, DEFAULT_THRESHOLD) for _ in range(n)]


def measure(grids: list[np.ndarray], items: int) -> dict[str, float]:
    """Mean payload bits per item when ``items`` grids share a payload; checks round trip."""
    total_bits, payloads = 0, 0
    t0 = time.perf_counter()
    for i in range(0, len(grids) - items + 1, items):
        group = grids[i : i + items]
        data = compress_grids(group)
        back = decompress_grids(data)
        assert all((a == b).all() for a, b in zip(group, back, strict=True)), "round trip failed"
        total_bits += 8 * len(data)
        payloads += 1
    dt = time.perf_counter() - t0
    cells = grids[0].size
    on = float(np.mean([g.mean() for g in grids]))
    return {
        "payloads": payloads,
        "bits_per_item": total_bits / (payloads * items),
        "raw_bits_per_item": float(cells),
        "fraction_on": on,
        "ms_per_payload": 1000 * dt / payloads,
    }


def fit_priors(grids: list[np.ndarray], strength: int = PRIOR_STRENGTH) -> list[tuple[int, int]]:
    """Per-context (zeros, ones) prior counts: the training frequency (add-half smoothed)
    scaled to ``strength`` observations, each count at least 1."""
    counts = np.zeros((N_CONTEXTS, 2))
    for a in grids:
        g = a.astype(np.uint8).tolist()
        rows, cols = a.shape
        for r in range(rows):
            for c in range(cols):
                counts[context(g, r, c, cols), g[r][c]] += 1
    p1 = (counts[:, 1] + 0.5) / (counts.sum(axis=1) + 1.0)
    return [(max(1, round(strength * (1 - p))), max(1, round(strength * p))) for p in p1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--items", type=int, default=3)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit-priors", action="store_true", help="print PRIORS fitted on seed 100 and exit")
    args = ap.parse_args(argv)
    if args.fit_priors:
        train = [g for fam in FAMILIES for g in synthetic_grids(fam, 1500, 8, seed=100)]
        for z, o in fit_priors(train):
            print(f"    ({z}, {o}),")
        return
    print(
        f"synthetic maps (not CLIP output), {args.images} images × {args.items} items, "
        f"{args.size}×{args.size} grids, threshold {DEFAULT_THRESHOLD}, seed {args.seed}"
    )
    for fam in FAMILIES:
        grids = synthetic_grids(fam, args.images * args.items, args.size, args.seed)
        r = measure(grids, args.items)
        print(
            f"  {fam:7s} {r['bits_per_item']:6.2f} bits/item (raw {r['raw_bits_per_item']:.0f}), "
            f"{r['fraction_on']:.0%} cells on, {r['ms_per_payload']:.1f} ms per payload (encode+decode)"
        )


if __name__ == "__main__":
    main()
