"""MATLAB's ``imresize`` (bicubic, antialiased when shrinking) for float gray images.

NIQE's published values come from MATLAB, whose second scale is ``imresize(im, 0.5)``;
scipy/PIL/OpenCV resizers use other kernels or no antialiasing and shift the score.
"""

from __future__ import annotations

import math

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - indices
    weights = scale * _cubic(scale * dist) if antialias else _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(image: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, indices = _contributions(image.shape[axis], out_len, scale)
    moved = np.moveaxis(image, axis, 0)
    out = np.einsum("ok,ok...->o...", weights, moved[indices])
    return np.moveaxis(out, 0, axis)


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """imresize(image, scale) for a 2-D float array, rows first as MATLAB does for equal scales."""
    image = np.asarray(image, dtype=np.float64)
    out_shape = [math.ceil(n * scale) for n in image.shape[:2]]
    out = _resize_axis(image, 0, out_shape[0], scale)
    return _resize_axis(out, 1, out_shape[1], scale)
