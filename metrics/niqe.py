"""NIQE (Mittal et al. 2013), following the original MATLAB release (computequality.m).

Same steps as MATLAB: rgb2gray (rounded to uint8), crop to whole 96x96 blocks, MSCN with
a 7x7 Gaussian (sigma 7/6, replicate borders), 18 AGGD features per block at two scales
(the second after MATLAB's bicubic antialiased imresize by 0.5), NaN-aware mean and
covariance (nanmean / nancov), and the Mahalanobis-like distance to the LIVE pristine
model (basicsr's niqe_pris_params.npz, converted from MATLAB's modelparameters.mat).
MSCN values of flat 7x7 neighbourhoods are exact zeros, as in MATLAB's results (on
pyiqa's five calibration pairs: within 0.03 of MATLAB, `python -m metrics.validate`).
Lower is better.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.special import gamma

from .images import ImageInputError, matlab_rgb2gray
from .matlab_resize import imresize
from .weights import load_niqe_params

BLOCK = 96
_GAM = 0.2 + 0.001 * np.arange(9801)  # MATLAB 0.2:0.001:10
_R_GAM = gamma(2 / _GAM) ** 2 / (gamma(1 / _GAM) * gamma(3 / _GAM))


def _gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def _aggd(vec: np.ndarray) -> tuple[float, float, float]:
    """MATLAB estimateaggdparam: (alpha, left std, right std); NaN where a side is empty."""
    neg, pos = vec[vec < 0], vec[vec > 0]
    left = np.sqrt(np.mean(neg**2)) if neg.size else np.nan
    right = np.sqrt(np.mean(pos**2)) if pos.size else np.nan
    gamma_hat = left / right
    mean_sq = np.mean(vec**2)
    rhat = np.mean(np.abs(vec)) ** 2 / mean_sq if mean_sq > 0 else np.nan
    rhat_norm = rhat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    if not np.isfinite(rhat_norm):
        return np.nan, left, right
    alpha = float(_GAM[np.argmin((_R_GAM - rhat_norm) ** 2)])
    return alpha, left, right


def _block_features(block: np.ndarray) -> list[float]:
    """18 features: AGGD (alpha, mean beta) of the MSCN block, and (alpha, mean, beta_l,
    beta_r) of its products with the four neighbour shifts (NIQE's computefeature)."""

    def betas(vec: np.ndarray) -> tuple[float, float, float]:
        alpha, left, right = _aggd(vec)
        scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha)) if np.isfinite(alpha) else np.nan
        return alpha, left * scale, right * scale

    alpha, beta_l, beta_r = betas(block.reshape(-1))
    feat = [alpha, (beta_l + beta_r) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a, bl, br = betas((block * np.roll(block, shift, axis=(0, 1))).reshape(-1))
        mean = (br - bl) * (gamma(2 / a) / gamma(1 / a)) if np.isfinite(a) else np.nan
        feat += [a, mean, bl, br]
    return feat


def _scale_features(image: np.ndarray, block: int, window: np.ndarray) -> np.ndarray:
    mu = ndimage.correlate(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.correlate(image * image, window, mode="nearest") - mu * mu))
    structdis = (image - mu) / (sigma + 1)
    # Where the 7x7 neighbourhood is constant, image - mu is exactly 0 in exact arithmetic;
    # in floating point it is ±1e-14 noise whose sign decides which side of the AGGD fit
    # it counts on (a quarter of the pixels of an image with flat areas). MATLAB's result
    # (the published values) counts them as zeros, on neither side.
    flat = ndimage.maximum_filter(image, size=window.shape, mode="nearest") == ndimage.minimum_filter(
        image, size=window.shape, mode="nearest"
    )
    structdis[flat] = 0.0
    rows, cols = image.shape[0] // block, image.shape[1] // block
    feats = [
        _block_features(structdis[r * block : (r + 1) * block, c * block : (c + 1) * block])
        for c in range(cols)
        for r in range(rows)
    ]
    return np.asarray(feats, dtype=np.float64)


@lru_cache(maxsize=1)
def _pristine() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, cov, window): the npz also carries MATLAB's own 7x7 window, used when present
    (it differs from a freshly computed fspecial in the last bits, which moves scores)."""
    mu, cov, window = load_niqe_params()
    return mu, cov, (window if window is not None else _gaussian_window())


def niqe_gray(gray: np.ndarray) -> float:
    """NIQE of a float gray image with values in [0, 255] (already rgb2gray'd)."""
    h, w = gray.shape
    if h < BLOCK or w < BLOCK:
        raise ImageInputError(f"NIQE needs images of at least {BLOCK}x{BLOCK} pixels, got {w}x{h}")
    image = gray[: (h // BLOCK) * BLOCK, : (w // BLOCK) * BLOCK].astype(np.float64)
    mu_pris, cov_pris, window = _pristine()
    scale1 = _scale_features(image, BLOCK, window)
    scale2 = _scale_features(imresize(image, 0.5), BLOCK // 2, window)
    feats = np.concatenate([scale1, scale2], axis=1)
    mu_dist = np.nanmean(feats, axis=0)
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < 2:
        cov_dist = np.full_like(cov_pris, np.nan)
    else:
        cov_dist = np.cov(complete, rowvar=False)
    matrix = (cov_pris + cov_dist) / 2
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(mu_dist)):
        return float("nan")
    inv = np.linalg.pinv(matrix, rcond=max(matrix.shape) * np.finfo(np.float64).eps)
    diff = mu_pris - mu_dist
    return float(np.sqrt(diff @ inv @ diff))


def niqe(image: np.ndarray) -> float:
    """NIQE of an HxWx3 uint8 RGB array; lower is better."""
    return niqe_gray(matlab_rgb2gray(image))
