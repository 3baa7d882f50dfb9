"""Small images and tiny random models for the metrics tests.

Random models prove plumbing only (shapes, caching, batching, availability); quality
values are validated separately against published references.
"""

from __future__ import annotations

import numpy as np


def photo(size: int = 64, seed: int = 0) -> np.ndarray:
    """A deterministic crop of skimage's astronaut photograph (natural statistics)."""
    from skimage import data

    full = data.astronaut()
    rng = np.random.default_rng(seed)
    y, x = rng.integers(0, full.shape[0] - size, size=2)
    return np.ascontiguousarray(full[y : y + size, x : x + size])


def noisy(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(np.float64) + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def tiny_clip_scorer():
    """A ClipScorer around a randomly initialised 1-layer open_clip CLIP (plumbing only)."""
    import open_clip
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from metrics.clip import ClipScorer

    torch.manual_seed(0)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    )
    preprocess = open_clip.image_transform(32, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    return ClipScorer(model, preprocess, tokenizer, label="tiny random CLIP (test plumbing only)")
