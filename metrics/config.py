"""Run-time configuration of the metrics: which CLIP, where the FID weights are.

Read once from the environment (MISC_CLIP_MODEL, MISC_CLIP_PRETRAINED, MISC_FID_WEIGHTS,
MISC_METRICS_DEVICE) and replaceable with ``metrics.configure(...)``. This is the only
module-level state besides the model cache, which ``configure`` clears.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class MetricsConfig:
    # open_clip model name and pretrained tag (or a local checkpoint path), loaded the
    # normal open_clip way: create_model_and_transforms(clip_model, pretrained=clip_pretrained).
    clip_model: str = field(default_factory=lambda: os.environ.get("MISC_CLIP_MODEL", "ViT-B-32"))
    clip_pretrained: str = field(default_factory=lambda: os.environ.get("MISC_CLIP_PRETRAINED", "openai"))
    # pytorch-fid's pt_inception-2015-12-05-6726825d.pth; None = FID/KID unavailable.
    fid_weights: str | None = field(default_factory=lambda: os.environ.get("MISC_FID_WEIGHTS") or None)
    device: str = field(default_factory=lambda: os.environ.get("MISC_METRICS_DEVICE", "cpu"))
    batch_size: int = 8


_config = MetricsConfig()


def get_config() -> MetricsConfig:
    return _config


def set_config(**changes) -> MetricsConfig:
    global _config
    _config = replace(_config, **changes)
    return _config
