"""The batched bootstrap gives the intervals of fitting each resample on its own."""

from __future__ import annotations

import numpy as np
import pytest

from study.scaling import JOD_SIGMA, aggregate, bootstrap, fit


def _reference(model: str, a, b, y, g, n: int, samples: int, seed: int):  # noqa: ANN001
    """The one-fit-per-resample bootstrap this module used before (the slow reference)."""
    rng = np.random.default_rng(seed)
    raters = np.unique(g)
    index = {r: np.flatnonzero(g == r) for r in raters}
    draws = np.empty((samples, n))
    for k in range(samples):
        rows = np.concatenate([index[r] for r in rng.choice(raters, size=raters.size, replace=True)])
        draws[k] = fit(model, aggregate(a[rows], b[rows], y[rows], n)).scores
    return np.quantile(draws, 0.025, axis=0), np.quantile(draws, 0.975, axis=0)


def _votes(seed: int, n_items: int = 12, raters: int = 10, per_rater: int = 40, groups: int = 2):
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1, n_items)
    a = rng.integers(0, n_items, raters * per_rater)
    # two sources never compared with each other: items of one half only meet each other
    half = n_items // groups
    b = (a // half) * half + (a % half + rng.integers(1, half, a.size)) % half
    d = true[a] - true[b] + rng.normal(0, JOD_SIGMA, a.size)
    y = np.where(np.abs(d) < 0.3, 0.5, (d > 0).astype(float))
    return a, b, y, np.repeat(np.arange(raters) * 7 + 3, per_rater)


@pytest.mark.parametrize("model", ["bt-davidson", "thurstone-v"])
@pytest.mark.parametrize("seed", [0, 1])
def test_batched_bootstrap_matches_one_fit_per_resample(model: str, seed: int) -> None:
    a, b, y, g = _votes(seed)
    lo, hi = bootstrap(model, a, b, y, g, 12, samples=40, seed=seed)
    rlo, rhi = _reference(model, a, b, y, g, 12, 40, seed)
    assert np.all(hi > lo)
    np.testing.assert_allclose(lo, rlo, atol=2e-3)
    np.testing.assert_allclose(hi, rhi, atol=2e-3)


def test_batched_bootstrap_without_ties_and_with_an_unseen_item() -> None:
    a, b, y, g = _votes(2)
    y = np.where(y == 0.5, 1.0, y)  # no ties at all: Davidson's ν is held by its own prior
    lo, hi = bootstrap("bt-davidson", a, b, y, g, 13, samples=30, seed=2)  # item 12 never compared
    rlo, rhi = _reference("bt-davidson", a, b, y, g, 13, 30, 2)
    np.testing.assert_allclose(np.c_[lo, hi], np.c_[rlo, rhi], atol=2e-3)
    assert lo[12] == hi[12] == 0.0


def test_vectorised_correlation_bootstrap_matches_scipy_per_sample() -> None:
    from scipy.stats import kendalltau, spearmanr

    from study.correlation import _plcc, _rowwise_kendall_b, _rowwise_pearson, _rowwise_plcc, fit_logistic5

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 36)
    y = np.tanh(1.5 * x) + rng.normal(0, 0.2, 36)
    x[:4] = np.round(x[:4])  # a few ties
    idx = rng.integers(0, 36, (25, 36))
    xs, ys = x[idx], y[idx]
    from scipy.stats import rankdata

    np.testing.assert_allclose(_rowwise_pearson(rankdata(xs, axis=1), rankdata(ys, axis=1)),
                               [spearmanr(a, b)[0] for a, b in zip(xs, ys, strict=True)], atol=1e-12)
    np.testing.assert_allclose(_rowwise_kendall_b(xs, ys), [kendalltau(a, b)[0] for a, b in zip(xs, ys, strict=True)],
                               atol=1e-12)
    full = fit_logistic5(x, y)
    assert full.kind == "logistic5"
    np.testing.assert_allclose(_rowwise_plcc(xs, ys, full), [_plcc(a, b)[0] for a, b in zip(xs, ys, strict=True)],
                               atol=1e-4)
