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
from scipy.stats import kendalltau, pearsonr, spearmanr


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


def fit_logistic5(x: np.ndarray, y: np.ndarray) -> LogisticFit:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < MIN_POINTS_LOGISTIC:
        slope, intercept = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, float(np.mean(y)))
        return LogisticFit((float(slope), float(intercept)), "linear")
    sx = float(np.std(x)) or 1.0
    r = np.corrcoef(x, y)[0, 1] if np.std(y) > 0 and np.std(x) > 0 else 1.0
    p0 = [float(np.ptp(y)) or 1.0, float(np.sign(r) or 1.0) / sx, float(np.mean(x)), 0.0, float(np.mean(y))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(logistic5, x, y, p0=p0, maxfev=2000)
        if np.all(np.isfinite(params)) and np.all(np.isfinite(logistic5(x, *params))):
            return LogisticFit(tuple(float(p) for p in params), "logistic5")
    except (RuntimeError, ValueError, TypeError):
        pass
    slope, intercept = np.polyfit(x, y, 1) if np.std(x) > 0 else (0.0, float(np.mean(y)))
    return LogisticFit((float(slope), float(intercept)), "linear")


def _plcc(x: np.ndarray, y: np.ndarray) -> tuple[float, LogisticFit]:
    fitted = fit_logistic5(x, y)
    pred = fitted(x)
    if np.std(pred) == 0 or np.std(y) == 0:
        return float("nan"), fitted
    return float(pearsonr(pred, y)[0]), fitted


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
    boot = np.full((samples, 3), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(samples):
            idx = rng.integers(0, x.size, x.size)
            xs, ys = x[idx], y[idx]
            if np.ptp(xs) == 0 or np.ptp(ys) == 0:
                continue
            boot[k, 0] = spearmanr(xs, ys)[0]
            boot[k, 1] = kendalltau(xs, ys)[0]
            boot[k, 2] = _plcc(xs, ys)[0]
    alpha = (1 - ci_level) / 2

    def ci(col: int) -> tuple[float, float]:
        v = boot[:, col][np.isfinite(boot[:, col])]
        if v.size == 0:
            return (float("nan"), float("nan"))
        return (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))

    return Correlation(metric, int(x.size), srcc, krcc, plcc, ci(0), ci(1), ci(2), fitted, level)
