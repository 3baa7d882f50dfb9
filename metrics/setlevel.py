"""Set-level metrics: features per image (cached by content), then FD / KID.

    images ─► extractor (Inception pool3 | VGG16 relu5_3 mean | CLIP image) ─► N x D
           ─► frechet_distance / kernel_distance

FD-VGG16 exists because Inception weights do not install from a package registry (they
are downloaded on first use where the network allows, metrics/inception.py): it is the
same Frechet distance on another network and is never called FID.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config as _config
from .frechet import frechet_distance_features, kernel_distance
from .images import to_float_tensor

_feature_cache: dict[tuple[str, str], np.ndarray] = {}
_CACHE_LIMIT = 50_000


class VGG16Pooled(nn.Module):
    """x in [0, 1] → 512-d: ImageNet VGG16 up to relu5_3 at 224x224, spatially averaged."""

    def __init__(self, vgg_features: nn.Sequential):
        super().__init__()
        self.body = vgg_features[:30]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    @classmethod
    def from_packages(cls) -> VGG16Pooled:
        from .backbones import pretrained_vgg16

        return cls(pretrained_vgg16()[0]).eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        return self.body((x - self.mean) / self.std).mean(dim=(2, 3))


def _digest(array: np.ndarray) -> str:
    return hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()


def extract(
    key: str,
    images: Sequence[np.ndarray],
    run: Callable[[list[np.ndarray]], np.ndarray],
    *,
    progress: bool,
    desc: str,
) -> np.ndarray:
    """Features of every image, computing only those not cached, in batches of one size."""
    from tqdm.auto import tqdm

    digests = [_digest(a) for a in images]
    todo = [i for i, d in enumerate(digests) if (key, d) not in _feature_cache]
    size = _config.get_config().batch_size
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in todo:
        groups.setdefault(images[i].shape, []).append(i)
    with tqdm(total=len(todo), desc=desc, unit="img", disable=not progress or len(todo) < 8) as bar:
        for idx in groups.values():
            step = max(1, min(size, 4 * 512 * 512 // (images[idx[0]].shape[0] * images[idx[0]].shape[1])))
            for start in range(0, len(idx), step):
                chunk = idx[start : start + step]
                feats = run([images[i] for i in chunk])
                for i, f in zip(chunk, feats, strict=True):
                    if len(_feature_cache) >= _CACHE_LIMIT:
                        _feature_cache.clear()
                    _feature_cache[(key, digests[i])] = np.asarray(f, dtype=np.float64)
                bar.update(len(chunk))
    return np.stack([_feature_cache[(key, d)] for d in digests])


def _torch_runner(model: nn.Module) -> Callable[[list[np.ndarray]], np.ndarray]:
    device = _config.get_config().device

    def run(batch: list[np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return model(to_float_tensor(batch).to(device)).cpu().numpy()

    return run


def set_metrics(
    refs: list[np.ndarray],
    dists: list[np.ndarray],
    names: list[str],
    model: Callable[[str, Callable[[], Any]], Any],
    *,
    progress: bool,
) -> dict[str, float]:
    cfg = _config.get_config()
    out: dict[str, float] = {}
    if "fid" in names or "kid" in names:
        from .inception import InceptionPool3

        net = model("inception", lambda: InceptionPool3.from_config(cfg).to(cfg.device))
        key = f"inception:{getattr(net, 'label', id(net))}"
        run = _torch_runner(net)
        fa = extract(key, refs, run, progress=progress, desc="Inception (ref)")
        fb = extract(key, dists, run, progress=progress, desc="Inception (dist)")
        if "fid" in names:
            out["fid"] = frechet_distance_features(fa, fb)
        if "kid" in names:
            out["kid"] = kernel_distance(fa, fb)
    if "fd_vgg16" in names:
        net = model("vgg16_fd", lambda: VGG16Pooled.from_packages().to(cfg.device))
        run = _torch_runner(net)
        key = f"vgg16:{id(net)}"
        out["fd_vgg16"] = frechet_distance_features(
            extract(key, refs, run, progress=progress, desc="VGG16 (ref)"),
            extract(key, dists, run, progress=progress, desc="VGG16 (dist)"),
        )
    if "fd_clip" in names:
        from .api import _clip_scorer

        scorer = _clip_scorer()

        def run_clip(batch: list[np.ndarray]) -> np.ndarray:
            return scorer.image_features(batch, normalize=False)

        key = f"clip:{scorer.label}:{id(scorer)}"
        out["fd_clip"] = frechet_distance_features(
            extract(key, refs, run_clip, progress=progress, desc="CLIP (ref)"),
            extract(key, dists, run_clip, progress=progress, desc="CLIP (dist)"),
        )
    return {n: out[n] for n in names}
