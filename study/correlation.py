"""How well a metric predicts the quality scores: SRCC, KRCC, and PLCC after a logistic fit.

    metric x, score y ─► SRCC, KRCC (rank order; no fit)
                     └─► 5-parameter logistic f(x) (VQEG) ─► PLCC(f(x), y)
    bootstrap over items ─► percentile confidence intervals for all three

The 5-parameter logistic of the VQEG reports,
    f(x) = β1 (½ − 1 / (1 + exp(β2 (x − β3)))) + β4 x + β5,
maps a metric onto the score scale so PLCC measures prediction accuracy after a
monotonic-ish correction rather than linearity. With fewer than 8 points (e.g. a handful
of conditions) five parameters would interpolate, so a straight line is fitted instead;
the same happens if the logistic fit does not converge. ``fit`` says which.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr


def logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    z = np.minimum(np.maximum(b2 * (x - b3), -50.0), 50.0)
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(z))) + b4 * x + b5


@dataclass
class LogisticFit:
    params: tuple[float, ...]
    kind: str  # "logistic5" | "linear"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "logistic5":
            return logistic5(x, *self.params)
        return self.params[0] * x + self.params[1]


MIN_POINTS_LOGISTIC = 8  # below this a 5-parameter curve interpolates: fit a line instead


def fit_logistic5(x: np.ndarray, y: np.ndarray, p0: tuple[float, ...] | None = None) -> LogisticFit:
    """VQEG 5-parameter logistic (a line below 8 points); ``p0``: a start (e.g. the full data's fit)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < MIN_POINTS_LOGISTIC:
        slope, intercept = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, float(np.mean(y)))
        return LogisticFit((float(slope), float(intercept)), "linear")
    if p0 is None:
        sx = float(np.std(x)) or 1.0
        r = np.corrcoef(x, y)[0, 1] if np.std(y) > 0 and np.std(x) > 0 else 1.0
        p0 = (float(np.ptp(y)) or 1.0, float(np.sign(r) or 1.0) / sx, float(np.mean(x)), 0.0, float(np.mean(y)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(logistic5, x, y, p0=list(p0), maxfev=2000)
        if np.all(np.isfinite(params)) and np.all(np.isfinite(logistic5(x, *params))):
            return LogisticFit(tuple(float(p) for p in params), "logistic5")
    except (RuntimeError, ValueError, TypeError):
        pass
    slope, intercept = np.polyfit(x, y, 1) if np.std(x) > 0 else (0.0, float(np.mean(y)))
    return LogisticFit((float(slope), float(intercept)), "linear")


def _plcc(x: np.ndarray, y: np.ndarray, p0: tuple[float, ...] | None = None) -> tuple[float, LogisticFit]:
    fitted = fit_logistic5(x, y, p0)
    pred = fitted(x)
    if np.std(pred) == 0 or np.std(y) == 0:
        return float("nan"), fitted
    return float(pearsonr(pred, y)[0]), fitted


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return np.sum(a * b, axis=1) / np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))


def _rowwise_kendall_b(x: np.ndarray, y: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Kendall's τ-b of each row pair (as scipy's ``kendalltau``), in chunks of rows."""
    out = np.empty(x.shape[0])
    iu = np.triu_indices(x.shape[1], 1)
    for lo in range(0, x.shape[0], chunk):
        xs, ys = x[lo:lo + chunk], y[lo:lo + chunk]
        dx = np.sign(xs[:, :, None] - xs[:, None, :])[:, iu[0], iu[1]]
        dy = np.sign(ys[:, :, None] - ys[:, None, :])[:, iu[0], iu[1]]
        num = np.sum(dx * dy, axis=1)
        den = np.sqrt(np.sum(dx != 0, axis=1) * np.sum(dy != 0, axis=1).astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo:lo + chunk] = num / den
    return out


def _batch_logistic5(x: np.ndarray, y: np.ndarray, p0: tuple[float, ...], iters: int = 200
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt on every row at once (rows: bootstrap samples), from ``p0``.

    Returns the parameters (B × 5) and which rows converged (relative cost change or step
    below 1e-8, as MINPACK's ftol / xtol); the others get a line, as ``fit_logistic5`` does.
    """
    rows = x.shape[0]
    p = np.tile(np.asarray(p0, dtype=np.float64), (rows, 1))
    eye = np.eye(5)

    def residual(q: np.ndarray, xa: np.ndarray, ya: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return logistic5(xa, *(q[:, k, None] for k in range(5))) - ya

    r = residual(p, x, y)
    cost = np.sum(r * r, axis=1)
    lam = np.full(rows, 1e-3)
    converged = np.zeros(rows, dtype=bool)
    for _ in range(iters):
        idx = np.flatnonzero(~converged & (lam < 1e12))  # still running (not converged, not stuck)
        if idx.size == 0:
            break
        xa, pa, ra = x[idx], p[idx], r[idx]
        raw = pa[:, 1, None] * (xa - pa[:, 2, None])
        q = 1.0 / (1.0 + np.exp(np.clip(raw, -50.0, 50.0)))
        dz = pa[:, 0, None] * q * (1.0 - q) * (np.abs(raw) < 50.0)
        jac = np.stack([0.5 - q, dz * (xa - pa[:, 2, None]), -dz * pa[:, 1, None], xa, np.ones_like(xa)], axis=2)
        a = np.einsum("bni,bnj->bij", jac, jac)
        g = np.einsum("bni,bn->bi", jac, ra)
        step = -np.linalg.solve(a + lam[idx, None, None] * (a * eye + 1e-9 * eye), g[..., None])[..., 0]
        trial = pa + step
        rt = residual(trial, xa, y[idx])
        ct = np.sum(rt * rt, axis=1)
        better = np.isfinite(ct) & (ct <= cost[idx])
        small = ((cost[idx] - ct) <= 1e-8 * np.maximum(cost[idx], 1e-300)) | (
            np.max(np.abs(step) / (np.abs(pa) + 1e-8), axis=1) < 1e-8)
        up = idx[better]
        p[up], r[up], cost[up] = trial[better], rt[better], ct[better]
        lam[idx] = np.where(better, lam[idx] / 3.0, lam[idx] * 4.0)
        converged[idx[better & small]] = True
    return p, converged & np.all(np.isfinite(p), axis=1)


def _rowwise_plcc(x: np.ndarray, y: np.ndarray, fitted: LogisticFit) -> np.ndarray:
    """PLCC after the logistic fit of each row (warm start at the full data's fit)."""
    linear = np.abs(_rowwise_pearson(x, y))  # a fitted line predicts with |r|
    if fitted.kind != "logistic5" or x.shape[1] < MIN_POINTS_LOGISTIC:
        return linear
    params, ok = _batch_logistic5(x, y, fitted.params)
    pred = logistic5(x, *(params[:, k, None] for k in range(5)))
    ok &= np.all(np.isfinite(pred), axis=1) & (np.ptp(pred, axis=1) > 0)
    out = linear.copy()
    out[ok] = _rowwise_pearson(pred[ok], y[ok])
    return out


@dataclass
class Correlation:
    metric: str
    n: int
    srcc: float
    krcc: float
    plcc: float
    srcc_ci: tuple[float, float]
    krcc_ci: tuple[float, float]
    plcc_ci: tuple[float, float]
    fit: LogisticFit
    level: str = "stimulus"  # "stimulus" | "condition"
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        return {
            "metric": self.metric, "level": self.level, "n": self.n,
            "srcc": self.srcc, "srcc_lo": self.srcc_ci[0], "srcc_hi": self.srcc_ci[1],
            "krcc": self.krcc, "krcc_lo": self.krcc_ci[0], "krcc_hi": self.krcc_ci[1],
            "plcc": self.plcc, "plcc_lo": self.plcc_ci[0], "plcc_hi": self.plcc_ci[1],
            "fit": self.fit.kind, "fit_params": list(self.fit.params),
        }


def correlate(metric: str, x: np.ndarray, y: np.ndarray, samples: int = 300, seed: int = 0,
              level: str = "stimulus", ci_level: float = 0.95) -> Correlation:
    """Correlation of metric values ``x`` with quality scores ``y`` (needs ≥ 3 points)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3:
        raise ValueError(f"{metric}: need at least 3 scored items with this metric, got {x.size}")
    srcc = float(spearmanr(x, y)[0])
    krcc = float(kendalltau(x, y)[0])
    plcc, fitted = _plcc(x, y)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, (samples, x.size))
    xs, ys = x[idx], y[idx]
    ok = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
    boot = np.full((samples, 3), np.nan)
    boot[ok, 0] = _rowwise_pearson(rankdata(xs[ok], axis=1), rankdata(ys[ok], axis=1))
    boot[ok, 1] = _rowwise_kendall_b(xs[ok], ys[ok])
    boot[ok, 2] = _rowwise_plcc(xs[ok], ys[ok], fitted)
    alpha = (1 - ci_level) / 2

    def ci(col: int) -> tuple[float, float]:
        v = boot[:, col][np.isfinite(boot[:, col])]
        if v.size == 0:
            return (float("nan"), float("nan"))
        return (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))

    return Correlation(metric, int(x.size), srcc, krcc, plcc, ci(0), ci(1), ci(2), fitted, level)
