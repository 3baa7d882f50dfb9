"""The fidelity ↔ realism score a decoder-in-the-loop encoder maximises.

    reconstruction, original ─┬─ fidelity    F = PSNR (dB)
                              ├─ perception  P = DISTS-like distance (lower is better)
                              └─ baseline    F_bic = PSNR of the same pixel layer, bicubic
    U(R) = (1−R)·F − R·P/κ − (1−R)·G·max(0, F_bic − X − F)

R = 0 is the most faithful (PSNR alone), R = 1 the most realistic (perception alone).
κ converts DISTS to dB: on Kodak24 Real-ESRGAN trades about 0.5 dB of PSNR for 0.065 of
DISTS against bicubic from the same files (docs/DECODERS.md), so κ = 0.13 DISTS per dB
and R = 0.5 is the point where that average trade is neutral. The last term is the
hallucination guard: a reconstruction more than X dB below its own bicubic upsampling
has invented structure that the pixel layer does not support, and at low R each dB
beyond X costs G dB of score.

The perception scorer is injected (``Perceptual``): codec imports nothing of metrics/
(docs/ARCHITECTURE.md), so bench and demo pass metrics' DISTS; without one the codec uses
`texture_distance`, a numpy stand-in for DISTS's texture term (its agreement with DISTS
is measured in docs/REALISM.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

# perceptual(reference, image) -> distance, lower is better (DISTS's scale: 0 = identical)
Perceptual = Callable[[Image.Image, Image.Image], float]

KAPPA = 0.13  # DISTS per dB of PSNR (see the module docstring)
GUARD_DB = 1.0  # X: how far below its own bicubic decode a reconstruction may fall freely
GUARD_WEIGHT = 3.0  # G: score lost per dB beyond X, at R = 0 (scaled by 1 − R)


def check_realism(realism: float) -> float:
    """R as a float in [0, 1], or ValueError saying what is wrong."""
    if isinstance(realism, bool) or not isinstance(realism, int | float) or not math.isfinite(realism):
        raise ValueError(f"realism must be a number from 0 to 1, got {realism!r}")
    if not 0.0 <= realism <= 1.0:
        raise ValueError(f"realism must be from 0 (faithful) to 1 (realistic), got {realism:g}")
    return float(realism)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@dataclass(frozen=True)
class Score:
    """One reconstruction's terms and its utility at the R it was scored for."""

    utility: float
    psnr: float
    bicubic_psnr: float
    perception: float | None  # None when R = 0 (not computed: it would not change the choice)
    penalty: float

    def as_dict(self) -> dict[str, float | None]:
        return {"utility": self.utility, "psnr": self.psnr, "bicubic_psnr": self.bicubic_psnr,
                "perception": self.perception, "penalty": self.penalty}  # fmt: skip


def utility(realism: float, fidelity_db: float, perception: float | None, bicubic_db: float) -> Score:
    """U(R) of the module docstring."""
    r = check_realism(realism)
    penalty = (1.0 - r) * GUARD_WEIGHT * max(0.0, bicubic_db - GUARD_DB - fidelity_db)
    u = (1.0 - r) * fidelity_db - penalty
    if r > 0:
        if perception is None:
            raise ValueError("a perception value is needed when realism > 0")
        u -= r * perception / KAPPA
    return Score(u, fidelity_db, bicubic_db, perception if r > 0 else None, penalty)


def texture_distance(reference: Image.Image, image: Image.Image, scales: int = 3, window: int = 8) -> float:
    """A cheap DISTS stand-in (numpy, no network): 1 − mean similarity of local structure
    (gradient correlation) and texture (local gradient-energy means and spreads) over
    `scales` octaves. Used only when the caller injects no perceptual scorer."""
    x = _gray(reference)
    y = _gray(image)
    sims = []
    for s in range(scales):
        gx, gy = _grad_mag(x), _grad_mag(y)
        mx, my = _box(gx, window), _box(gy, window)
        vx = np.maximum(_box(gx * gx, window) - mx * mx, 0)
        vy = np.maximum(_box(gy * gy, window) - my * my, 0)
        cxy = _box(gx * gy, window) - mx * my
        c1, c2 = 1e-4, 1e-4
        texture = (2 * mx * my + c1) / (mx * mx + my * my + c1)
        structure = (2 * cxy + c2) / (vx + vy + c2)
        sims.append(0.5 * float(texture.mean()) + 0.5 * float(structure.mean()))
        if s + 1 < scales:
            x, y = _half(x), _half(y)
    return 1.0 - float(np.mean(sims))


def _gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _half(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def _grad_mag(x: np.ndarray) -> np.ndarray:
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, 1:-1] = x[:, 2:] - x[:, :-2]
    gy[1:-1, :] = x[2:, :] - x[:-2, :]
    return np.sqrt(gx * gx + gy * gy)


def _box(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over non-overlapping k×k blocks (what is left at the edges is dropped)."""
    h, w = x.shape[0] // k * k, x.shape[1] // k * k
    if h == 0 or w == 0:
        return x.mean(keepdims=True)
    return x[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
