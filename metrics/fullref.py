"""Pixel-domain full-reference metrics: PSNR, SSIM, MS-SSIM.

Which reference each one reproduces (so published values can be compared):
- PSNR: on all three RGB channels, peak 255, as ``skimage.metrics.peak_signal_noise_ratio``
  (the reference pyiqa calibrates against). Identical images give +inf.
- SSIM: Wang et al.'s ``ssim_index.m`` (11x11 Gaussian, sigma 1.5, K=(0.01, 0.03), L=255,
  'valid' filtering) on MATLAB ``rgb2gray`` output, without the script's automatic
  downsampling of images over 256 px (as pyiqa's calibration ran it). Equal to
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`` on the same gray image.
- MS-SSIM: Wang's ``msssim.m``: five scales, weights (0.0448, 0.2856, 0.3001, 0.2363,
  0.1333), 2x2 mean filter with symmetric padding then decimation, on rgb2gray.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .images import matlab_rgb2gray, require_min_size

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2, _L = 0.01, 0.03, 255.0


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB over all RGB values (uint8 arrays); higher is better."""
    mse = np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2)
    if mse == 0:
        return math.inf
    return float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(image: np.ndarray, g: np.ndarray) -> np.ndarray:
    """2-D 'valid' correlation with the separable window outer(g, g)."""
    r = len(g) // 2
    out = ndimage.correlate1d(image, g, axis=0, mode="constant")
    out = ndimage.correlate1d(out, g, axis=1, mode="constant")
    return out[r : image.shape[0] - r, r : image.shape[1] - r]


def _ssim_maps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ssim_map, cs_map) of two float64 gray images, as in Wang's ssim_index_new."""
    g = _gaussian_1d()
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x**2
    syy = _filter_valid(y * y, g) - mu_y**2
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim_map = ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)) * cs
    return ssim_map, cs


def ssim_gray(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two float gray images with values in [0, 255]."""
    return float(_ssim_maps(x.astype(np.float64), y.astype(np.float64))[0].mean())


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIM on MATLAB rgb2gray of two uint8 RGB arrays; higher is better (max 1)."""
    require_min_size(reference, 11, "SSIM")
    return ssim_gray(matlab_rgb2gray(reference), matlab_rgb2gray(distorted))


def _halve(image: np.ndarray) -> np.ndarray:
    """imfilter(im, ones(2)/4, 'symmetric', 'same') then im(1:2:end, 1:2:end)."""
    padded = np.pad(image, ((0, 1), (0, 1)), mode="symmetric")
    mean = (padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]) / 4.0
    return mean[::2, ::2]


def ms_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """MS-SSIM (five scales) on MATLAB rgb2gray; higher is better. Needs >= 176 px sides."""
    require_min_size(reference, 11 * 2 ** (len(MS_SSIM_WEIGHTS) - 1), "MS-SSIM")
    x, y = matlab_rgb2gray(reference), matlab_rgb2gray(distorted)
    value = 1.0
    for level, weight in enumerate(MS_SSIM_WEIGHTS):
        ssim_map, cs_map = _ssim_maps(x, y)
        if level == len(MS_SSIM_WEIGHTS) - 1:
            value *= float(ssim_map.mean()) ** weight
        else:
            value *= float(cs_map.mean()) ** weight
            x, y = _halve(x), _halve(y)
    return float(value)
