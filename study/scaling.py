"""Pairwise comparisons → quality scores: Bradley–Terry with Davidson ties, Thurstone V.

    outcomes (a, b, y∈{1, ½, 0}) ─► counts per unordered pair (wins a, wins b, ties)
        ─► maximise log-likelihood + weak Gaussian prior (L-BFGS, analytic gradient)
        ─► scores (one per item; each connected group centred on 0)

Bradley–Terry–Davidson: with strengths π = exp(s) and tie parameter ν = exp(θ),
    P(a ≻ b) = π_a / D,  P(tie) = ν √(π_a π_b) / D,  D = π_a + π_b + ν √(π_a π_b).
Scores are in natural-log-odds units (a difference of 1 ⇒ a beats b 73% of the time
when ties are rare).

Thurstone Case V, in JOD units as in the pwcmp toolbox: P(a ≻ b) = Φ((s_a − s_b)/σ)
with σ = 1.4826, so a difference of 1 JOD means 75% preference. A tie counts half a
win for each side (pwcmp's convention).

The prior (precision ``prior`` on each score) keeps the fit finite when an item always
wins, and fixes the offset of groups of items that were never compared with each other
(different source images); it is weak enough to move scores by little once an item has
a handful of comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import log_ndtr
from threadpoolctl import threadpool_limits

JOD_SIGMA = 1.4826


@dataclass
class Counts:
    """Outcomes aggregated per unordered pair of items (a < b)."""

    n_items: int
    a: np.ndarray
    b: np.ndarray
    wins_a: np.ndarray
    wins_b: np.ndarray
    ties: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.wins_a + self.wins_b + self.ties


@dataclass
class ScaleFit:
    model: str  # "bt-davidson" | "thurstone-v"
    scores: np.ndarray
    tie_param: float | None  # Davidson's ν (None for Thurstone)
    log_likelihood: float
    converged: bool


def aggregate(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray,
              outcome: Sequence[float] | np.ndarray, n_items: int) -> Counts:
    """Outcome 1: a won, 0: b won, 0.5: tie."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(outcome, dtype=np.float64)
    if not (a.shape == b.shape == y.shape):
        raise ValueError("a, b and outcome must have the same length")
    if a.size and (a.min() < 0 or b.min() < 0 or max(a.max(), b.max()) >= n_items):
        raise ValueError("item index out of range")
    if np.any(a == b):
        raise ValueError("an item cannot be compared with itself")
    if not np.all(np.isin(y, (0.0, 0.5, 1.0))):
        raise ValueError("outcome must be 1 (a wins), 0 (b wins) or 0.5 (tie)")
    swap = a > b
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    y = np.where(swap, 1.0 - y, y)  # now outcome from lo's side
    key = lo * n_items + hi
    uniq, inv = np.unique(key, return_inverse=True)
    wins_lo = np.bincount(inv, weights=(y == 1.0), minlength=uniq.size)
    wins_hi = np.bincount(inv, weights=(y == 0.0), minlength=uniq.size)
    ties = np.bincount(inv, weights=(y == 0.5), minlength=uniq.size)
    return Counts(n_items, uniq // n_items, uniq % n_items, wins_lo, wins_hi, ties)


def components(n_items: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label of the connected group of each item (items never compared: own group)."""
    parent = np.arange(n_items)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[ri] = rj
    return np.array([find(i) for i in range(n_items)])


def _centre(scores: np.ndarray, counts: Counts) -> np.ndarray:
    labels = components(counts.n_items, counts.a, counts.b)
    out = scores.copy()
    for g in np.unique(labels):
        m = labels == g
        out[m] -= out[m].mean()
    return out


def fit_bt_davidson(counts: Counts, prior: float = 0.05, x0: np.ndarray | None = None) -> ScaleFit:
    n = counts.n_items
    a, b, wa, wb, t = counts.a, counts.b, counts.wins_a, counts.wins_b, counts.ties
    nn = wa + wb + t
    has_ties = t.sum() > 0

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        s, theta = x[:n], x[n]
        sa, sb = s[a], s[b]
        mid = theta + 0.5 * (sa + sb)
        stack = np.stack([sa, sb, mid])
        m = stack.max(axis=0)
        e = np.exp(stack - m)
        log_d = m + np.log(e.sum(axis=0))
        p = e / e.sum(axis=0)  # P(a), P(b), P(tie)
        ll = np.sum(wa * sa + wb * sb + t * mid - nn * log_d)
        # d ll / d s_a = wa + t/2 - nn (p_a + p_t/2); same for b
        ga = wa + 0.5 * t - nn * (p[0] + 0.5 * p[2])
        gb = wb + 0.5 * t - nn * (p[1] + 0.5 * p[2])
        g = np.zeros(n + 1)
        np.add.at(g, a, ga)
        np.add.at(g, b, gb)
        g[n] = np.sum(t - nn * p[2])
        ll -= 0.5 * prior * np.sum(s * s)
        g[:n] -= prior * s
        if not has_ties:  # ν → 0: keep θ at a fixed small value instead of running off
            ll -= 0.5 * (theta + 6.0) ** 2
            g[n] -= theta + 6.0
        return -ll, -g

    start = np.zeros(n + 1) if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    if x0 is None:
        start[n] = np.log(max(t.sum(), 0.5) / max(nn.sum(), 1.0)) + np.log(2.0)
    with threadpool_limits(1):  # tiny vectors: BLAS threads only contend (15× slower measured)
        res = minimize(f, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-7})
    scores = _centre(res.x[:n], counts)
    return ScaleFit("bt-davidson", scores, float(np.exp(res.x[n])), float(-res.fun), bool(res.success))


def fit_thurstone(counts: Counts, prior: float = 0.05, x0: np.ndarray | None = None) -> ScaleFit:
    n = counts.n_items
    a, b = counts.a, counts.b
    ka = counts.wins_a + 0.5 * counts.ties
    kb = counts.wins_b + 0.5 * counts.ties

    def f(s: np.ndarray) -> tuple[float, np.ndarray]:
        z = (s[a] - s[b]) / JOD_SIGMA
        lp, lq = log_ndtr(z), log_ndtr(-z)
        ll = np.sum(ka * lp + kb * lq)
        log_phi = -0.5 * z * z - 0.5 * np.log(2 * np.pi)
        dz = ka * np.exp(log_phi - lp) - kb * np.exp(log_phi - lq)
        g = np.zeros(n)
        np.add.at(g, a, dz / JOD_SIGMA)
        np.add.at(g, b, -dz / JOD_SIGMA)
        ll -= 0.5 * prior * np.sum(s * s)
        g -= prior * s
        return -ll, -g

    start = np.zeros(n) if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    with threadpool_limits(1):
        res = minimize(f, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-7})
    return ScaleFit("thurstone-v", _centre(res.x, counts), None, float(-res.fun), bool(res.success))


def fit(model: str, counts: Counts, prior: float = 0.05) -> ScaleFit:
    if model == "bt-davidson":
        return fit_bt_davidson(counts, prior)
    if model == "thurstone-v":
        return fit_thurstone(counts, prior)
    raise ValueError(f"unknown scaling model {model!r}")


def win_probability(model: str, s_a: np.ndarray | float, s_b: np.ndarray | float,
                    tie_param: float | None = None) -> np.ndarray:
    """P(a preferred over b) ignoring ties' share (used by screening and scheduling)."""
    d = np.asarray(s_a, dtype=np.float64) - np.asarray(s_b, dtype=np.float64)
    if model == "thurstone-v":
        return np.exp(log_ndtr(d / JOD_SIGMA))
    return 1.0 / (1.0 + np.exp(-d))


def _rater_counts(a: np.ndarray, b: np.ndarray, outcome: np.ndarray, groups: np.ndarray, raters: np.ndarray,
                  n_items: int) -> tuple[Counts, np.ndarray]:
    """The full data's pair list, and per rater and pair: wins of a, wins of b, ties (3 × R × P)."""
    full = aggregate(a, b, outcome, n_items)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    y = np.where(a > b, 1.0 - outcome, outcome)
    pair = np.searchsorted(full.a * n_items + full.b, lo * n_items + hi)
    r = np.searchsorted(raters, groups)
    per = np.zeros((3, raters.size, full.a.size))
    for k, value in enumerate((1.0, 0.0, 0.5)):
        m = y == value
        np.add.at(per[k], (r[m], pair[m]), 1.0)
    return full, per


def _batch_centre(x: np.ndarray, a: np.ndarray, b: np.ndarray, n: np.ndarray, n_items: int) -> np.ndarray:
    """Centre each sample's scores per connected group of its own comparisons (rows of ``x``).

    All samples form one block-diagonal graph (sample k's item i is node k·n_items + i), so
    one ``connected_components`` call labels every sample's groups.
    """
    rows = x.shape[0]
    k, p = np.nonzero(n > 0)
    graph = coo_matrix((np.ones(k.size), (k * n_items + a[p], k * n_items + b[p])),
                       shape=(rows * n_items, rows * n_items))
    _, labels = connected_components(graph, directed=False)
    flat = x.ravel()
    means = np.bincount(labels, weights=flat) / np.bincount(labels)
    return (flat - means[labels]).reshape(rows, n_items)


def _batch_fit(model: str, full: Counts, wa: np.ndarray, wb: np.ndarray, t: np.ndarray, prior: float,
               x0: np.ndarray) -> np.ndarray:
    """Fit B independent problems (rows of the weighted counts) as one L-BFGS problem.

    The objective is the sum of the B negative log-likelihoods, so its optimum is every
    sample's own optimum; one vectorised objective replaces B Python-level fits.
    """
    n, a, b = full.n_items, full.a, full.b
    samples, pairs = wa.shape
    ea = csr_matrix((np.ones(pairs), (np.arange(pairs), a)), shape=(pairs, n))
    eb = csr_matrix((np.ones(pairs), (np.arange(pairs), b)), shape=(pairs, n))

    def spread(ga: np.ndarray, gb: np.ndarray) -> np.ndarray:  # Σ over pairs into items, per sample
        return np.asarray((ea.T @ ga.T + eb.T @ gb.T).T)

    if model == "bt-davidson":
        nn = wa + wb + t
        no_ties = t.sum(axis=1) == 0

        def f(flat: np.ndarray) -> tuple[float, np.ndarray]:
            x = flat.reshape(samples, n + 1)
            s, theta = x[:, :n], x[:, n]
            sa, sb = s[:, a], s[:, b]
            mid = theta[:, None] + 0.5 * (sa + sb)
            m = np.maximum(np.maximum(sa, sb), mid)
            ea_, eb_, et_ = np.exp(sa - m), np.exp(sb - m), np.exp(mid - m)
            z = ea_ + eb_ + et_
            pa, pb, pt = ea_ / z, eb_ / z, et_ / z
            ll = np.sum(wa * sa + wb * sb + t * mid - nn * (m + np.log(z)))
            g = np.empty_like(x)
            g[:, :n] = spread(wa + 0.5 * t - nn * (pa + 0.5 * pt), wb + 0.5 * t - nn * (pb + 0.5 * pt)) - prior * s
            g[:, n] = np.sum(t - nn * pt, axis=1)
            ll -= 0.5 * prior * np.sum(s * s)
            ll -= 0.5 * np.sum((theta[no_ties] + 6.0) ** 2)
            g[no_ties, n] -= theta[no_ties] + 6.0
            return -ll, -g.ravel()
    elif model == "thurstone-v":
        ka, kb = wa + 0.5 * t, wb + 0.5 * t

        def f(flat: np.ndarray) -> tuple[float, np.ndarray]:
            s = flat.reshape(samples, n)
            z = (s[:, a] - s[:, b]) / JOD_SIGMA
            lp, lq = log_ndtr(z), log_ndtr(-z)
            log_phi = -0.5 * z * z - 0.5 * np.log(2 * np.pi)
            dz = (ka * np.exp(log_phi - lp) - kb * np.exp(log_phi - lq)) / JOD_SIGMA
            ll = np.sum(ka * lp + kb * lq) - 0.5 * prior * np.sum(s * s)
            g = spread(dz, -dz) - prior * s
            return -ll, -g.ravel()
    else:
        raise ValueError(f"unknown scaling model {model!r}")
    start = np.tile(x0, (samples, 1)).ravel()
    with threadpool_limits(1):
        res = minimize(f, start, jac=True, method="L-BFGS-B",
                       options={"maxiter": 5000, "gtol": 1e-7, "maxcor": 20})
    return res.x.reshape(samples, -1)[:, :n]


def bootstrap(model: str, a: np.ndarray, b: np.ndarray, outcome: np.ndarray, groups: np.ndarray,
              n_items: int, samples: int = 200, seed: int = 0, prior: float = 0.05,
              level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile confidence interval of each score, resampling raters (``groups``) with replacement.

        votes ─► counts per (rater, pair) ─► B draws of rater multiplicities W (B × R)
              ─► weighted counts W @ counts (B × P) ─► B fits at once (one L-BFGS, warm
                 start at the full data's fit) ─► centre per group ─► percentiles

    The draws are those of resampling raters one sample at a time (same seed, same
    samples); only the fitting is batched (measured: docs/STUDY.md).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    outcome, groups = np.asarray(outcome, dtype=np.float64), np.asarray(groups)
    rng = np.random.default_rng(seed)
    raters = np.unique(groups)
    weights = np.zeros((samples, raters.size))
    for k in range(samples):
        pick = rng.choice(raters, size=raters.size, replace=True)
        weights[k] = np.bincount(np.searchsorted(raters, pick), minlength=raters.size)
    if samples == 0 or a.size == 0:
        nan = np.full(n_items, np.nan)
        return nan, nan.copy()
    full, per = _rater_counts(a, b, outcome, groups, raters, n_items)
    wa, wb, t = (weights @ per[k] for k in range(3))
    first = fit(model, full, prior)
    x0 = first.scores if model == "thurstone-v" else np.append(first.scores, np.log(first.tie_param or 1e-3))
    draws = _batch_centre(_batch_fit(model, full, wa, wb, t, prior, x0), full.a, full.b, wa + wb + t, n_items)
    alpha = (1.0 - level) / 2
    return np.quantile(draws, alpha, axis=0), np.quantile(draws, 1 - alpha, axis=0)
