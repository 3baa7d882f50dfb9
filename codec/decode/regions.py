"""Item maps → per-prompt weights in latent space, and the weighted blend of noise predictions.

Map-guided decoding à la MultiDiffusion: at every denoising step each prompt (the overall
paragraph as background, one prompt per item) predicts noise for the whole latent, and
the predictions are averaged with per-pixel weights taken from the item maps:

    grid (8×8 bool) ──nearest──▶ latent size ──box blur ×2──▶ soft mask m_k ∈ [0, 1]
    c = max_k m_k,  w_bg = 1 − (1 − background_weight)·c,  w_k = (1 − background_weight)·c·m_k / Σ_j m_j
    ε = w_bg ε_bg + Σ_k w_k ε_k                          (weights sum to 1 everywhere)

Where no map is on, w_bg = 1 and every item weight is exactly 0, so the blend there is
bit-for-bit the background prompt's prediction: an item changes only its own region (and
a softening margin of at most ``softness`` grid cells around it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def soft_masks(grids: Sequence[np.ndarray], size: tuple[int, int], softness: float = 0.5) -> torch.Tensor:
    """(K, 1, h, w) float masks: each grid upsampled to ``size`` = (h, w) and softened.

    Softening is two box blurs of radius ``softness/2`` grid cells each, so the mask's
    edge spreads by at most ``softness`` cells and is exactly zero beyond that.
    """
    h, w = size
    if not grids:
        return torch.zeros(0, 1, h, w)
    out = []
    for grid in grids:
        g = torch.as_tensor(np.asarray(grid, dtype=np.float32))
        if g.ndim != 2:
            raise ValueError(f"an item map must be a 2-D grid, got shape {tuple(g.shape)}")
        m = F.interpolate(g[None, None], size=(h, w), mode="nearest")
        cell = min(h / g.shape[0], w / g.shape[1])
        radius = int(softness * cell / 2)
        for _ in range(2 if radius > 0 else 0):
            m = F.avg_pool2d(F.pad(m, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)
        out.append(m.clamp(0, 1))
    return torch.cat(out)


def region_weights(masks: torch.Tensor, background_weight: float = 0.3) -> torch.Tensor:
    """(K+1, 1, h, w) weights summing to 1, background first, from (K, 1, h, w) item masks.

    Where items cover a pixel fully, the background prompt keeps ``background_weight`` of
    the blend and the items share the rest in proportion to their masks (overlapping
    items are averaged); where no item is, the background has it all.
    """
    if masks.shape[0] == 0:
        raise ValueError("region_weights needs at least one item mask")
    if not 0.0 <= background_weight <= 1.0:
        raise ValueError(f"background_weight must be in [0, 1], got {background_weight}")
    coverage = masks.max(dim=0, keepdim=True).values
    total = masks.sum(dim=0, keepdim=True)
    share = torch.where(total > 0, masks / total.clamp_min(1e-12), torch.zeros_like(masks))
    items = share * coverage * (1.0 - background_weight)
    background = 1.0 - (1.0 - background_weight) * coverage
    return torch.cat([background, items])


def blend(noise: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Weighted average over prompts: (P, C, h, w) predictions × (P, 1, h, w) weights → (1, C, h, w).

    With no weights there is one prompt and its prediction is returned as is.
    """
    if weights is None:
        if noise.shape[0] != 1:
            raise ValueError("several prompt predictions need weights to be blended")
        return noise
    if weights.shape[0] != noise.shape[0]:
        raise ValueError(f"{noise.shape[0]} predictions but {weights.shape[0]} weight maps")
    return (noise * weights.to(noise.dtype)).sum(dim=0, keepdim=True)
