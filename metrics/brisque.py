"""BRISQUE-pypi: BRISQUE features scored by the SVR that the ``brisque`` PyPI package ships.

Honest naming: ``brisque==0.2.0`` ships its own retrained SVR (``models/svm.txt``) and
feature scaling (``models/normalize.pickle``), not LIVE's ``allmodel``; its scores differ
from MATLAB's ``brisque`` (pyiqa's "brisque" row). We reproduce that package's pipeline
(skimage rgb2gray, 7x7 Gaussian MSCN with zero padding, AGGD fits by root finding, a
second scale by OpenCV bicubic resize) without its heavy deps: the SVR (RBF, epsilon-SVR
in libsvm's text format) is evaluated with numpy, and the scaling pickle is read with an
unpickler that builds plain lists only. The two files come from the brisque wheel on first
use (metrics/fetch.py): the package is not installed, since it declares libsvm-official,
which compiles from source. Lower is better.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, signal, special

from .images import require_min_size
from .weights import UnsafePickleError


@dataclass(frozen=True)
class SVRModel:
    gamma: float
    rho: float
    coef: np.ndarray  # (n_sv,)
    vectors: np.ndarray  # (n_sv, n_features), dense

    def predict(self, x: np.ndarray) -> float:
        sq = np.sum((self.vectors - x[None, :]) ** 2, axis=1)
        return float(self.coef @ np.exp(-self.gamma * sq) - self.rho)


def parse_libsvm_model(text: str, n_features: int = 36) -> SVRModel:
    header: dict[str, str] = {}
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if line.strip() == "SV":
            start = i + 1
            break
        key, _, value = line.partition(" ")
        header[key] = value.strip()
    if start is None or header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError("expected a libsvm epsilon_svr model with an rbf kernel")
    coefs, rows = [], []
    for line in lines[start:]:
        parts = line.split()
        if not parts:
            continue
        coefs.append(float(parts[0]))
        row = np.zeros(n_features)
        for item in parts[1:]:
            index, value = item.split(":")
            row[int(index) - 1] = float(value)
        rows.append(row)
    return SVRModel(float(header["gamma"]), float(header["rho"]), np.asarray(coefs), np.stack(rows))


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise UnsafePickleError(f"refusing to load {module}.{name} from brisque's normalize.pickle")


@lru_cache(maxsize=1)
def _model() -> tuple[SVRModel, np.ndarray, np.ndarray]:
    from .fetch import packaged_file

    svm = parse_libsvm_model(packaged_file("brisque_svm.txt").read_text())
    with open(packaged_file("brisque_normalize.pickle"), "rb") as handle:
        scale = _PlainUnpickler(handle).load()
    return svm, np.asarray(scale["min_"], dtype=np.float64), np.asarray(scale["max_"], dtype=np.float64)


def _gaussian_kernel(n: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    # Written exactly as the package does: in flat regions the MSCN values are rounding
    # noise around 0 whose signs feed the AGGD fit, so even the order of operations matters.
    y, x = np.indices((n, n)) - int(n / 2)
    k = 1 / (2 * np.pi * sigma**2) * np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return k / np.sum(k)


def _mscn(image: np.ndarray) -> np.ndarray:
    kernel = _gaussian_kernel()
    mu = signal.convolve2d(image, kernel, "same")
    sigma = np.sqrt(np.abs(mu**2 - signal.convolve2d(image**2, kernel, "same")))
    return (image - mu) / (sigma + 1 / 255)


def _phi(alpha: np.ndarray) -> np.ndarray:
    return special.gamma(2 / alpha) ** 2 / (special.gamma(1 / alpha) * special.gamma(3 / alpha))


def _aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    x = x.reshape(-1)
    left, right = x[x < 0], x[x >= 0]
    sl = float(np.sqrt(np.mean(left**2))) if left.size else 0.0
    sr = float(np.sqrt(np.mean(right**2))) if right.size else 0.0
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    g = sl / sr if sr > 0 else np.inf
    big_r = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = float(optimize.root(lambda z: _phi(z) - big_r, [0.2]).x[0])
    const = np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    mean = (sr - sl) * const * (special.gamma(2 / alpha) / special.gamma(1 / alpha))
    return alpha, float(mean), sl, sr


def _features(gray: np.ndarray) -> list[float]:
    m = _mscn(gray)
    alpha, _mean, sl, sr = _aggd_fit(m)
    feats = [alpha, (sl**2 + sr**2) / 2]
    for pair in (
        m[:, :-1] * m[:, 1:],
        m[:-1, :] * m[1:, :],
        m[:-1, :-1] * m[1:, 1:],
        m[1:, :-1] * m[:-1, 1:],
    ):
        a, mean, pl, pr = _aggd_fit(pair)
        feats += [a, mean, pl**2, pr**2]
    return feats


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The package's 36 features of an HxWx3 uint8 RGB array."""
    import cv2
    from skimage.color import rgb2gray

    gray = rgb2gray(image)
    half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.asarray(_features(gray) + _features(half), dtype=np.float64)


def brisque_pypi(image: np.ndarray) -> float:
    """BRISQUE-pypi score (the brisque package's retrained SVR); lower is better."""
    require_min_size(image, 16, "BRISQUE-pypi")
    svm, lo, hi = _model()
    scaled = -1 + 2.0 / (hi - lo) * (brisque_features(image) - lo)
    return svm.predict(scaled)
