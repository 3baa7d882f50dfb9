"""Bjøntegaard delta rate: how many more (or fewer) bits one codec needs for the same quality.

    quality ▲         test  ref           log-rate of each curve is interpolated as a
            │        ╱    ╱               function of quality (piecewise cubic Hermite,
            │      ╱    ╱                 monotone: no overshoot between 3–4 points),
            │    ╱    ╱                   integrated over the quality range both curves
            │  ╱    ╱                     cover, and the mean gap is turned back into a
            └──────────────▶ log rate     ratio: BD-rate = exp(mean Δ log R) − 1.

Sign convention: negative BD-rate means the test codec needs fewer bits than the
reference for the same quality (better), whichever way the metric points: BD-rate is a
gap in rate averaged over a range of quality, so for metrics where lower is better (LPIPS,
DISTS, FID...) it keeps that meaning (the axis is negated only so that it increases).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def _curve(
    rates: Sequence[float], quality: Sequence[float], higher_is_better: bool
) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rates, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise ValueError("rates and quality must be 1-D sequences of the same length")
    ok = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[ok], q[ok]
    if not higher_is_better:
        q = -q
    order = np.argsort(q, kind="stable")
    q, logr = q[order], np.log(r[order])
    # Equal qualities: keep the cheaper point (the better operating point for that quality).
    keep_q: list[float] = []
    keep_r: list[float] = []
    for qi, ri in zip(q, logr, strict=True):
        if keep_q and qi == keep_q[-1]:
            keep_r[-1] = min(keep_r[-1], ri)
        else:
            keep_q.append(float(qi))
            keep_r.append(float(ri))
    return np.asarray(keep_q), np.asarray(keep_r)


def bd_rate(
    rate_ref: Sequence[float],
    quality_ref: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    higher_is_better: bool = True,
) -> float | None:
    """BD-rate of `test` against `ref`, in percent; None when the curves do not overlap.

    Each curve needs at least two distinct quality values; rates are any positive unit
    (bpp or bytes, the same for both curves).
    """
    q0, r0 = _curve(rate_ref, quality_ref, higher_is_better)
    q1, r1 = _curve(rate_test, quality_test, higher_is_better)
    if len(q0) < 2 or len(q1) < 2:
        return None
    lo, hi = max(q0[0], q1[0]), min(q0[-1], q1[-1])
    if not hi > lo:
        return None
    f0, f1 = PchipInterpolator(q0, r0), PchipInterpolator(q1, r1)
    mean_gap = (float(f1.integrate(lo, hi)) - float(f0.integrate(lo, hi))) / (hi - lo)
    return (math.exp(mean_gap) - 1.0) * 100.0
