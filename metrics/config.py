"""Run-time configuration of the metrics: which CLIP, where the FID weights are.

Read once from the environment (MISC_CLIP_MODEL, MISC_CLIP_PRETRAINED, MISC_FID_WEIGHTS,
MISC_FID_URL, MISC_FID_SHA256, MISC_METRICS_DEVICE) and replaceable with
``metrics.configure(...)``. This is the only module-level state besides the model cache, which ``configure`` clears.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

# pytorch-fid's published Inception weights (TF's 2015-12-05 Inception, ported). The file
# is named after the first 8 hex digits of its SHA-256, which is what torch.hub checks and
# all that pytorch-fid publishes; the full digest could not be established offline.
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256 = "6726825d"


@dataclass(frozen=True)
class MetricsConfig:
    # open_clip model name and pretrained tag (or a local checkpoint path), loaded the
    # normal open_clip way: create_model_and_transforms(clip_model, pretrained=clip_pretrained).
    clip_model: str = field(default_factory=lambda: os.environ.get("MISC_CLIP_MODEL", "ViT-B-32"))
    clip_pretrained: str = field(default_factory=lambda: os.environ.get("MISC_CLIP_PRETRAINED", "openai"))
    # A local copy of pytorch-fid's pt_inception-2015-12-05-6726825d.pth. None: download it
    # on first use from fid_url (unless HF_HUB_OFFLINE=1 or fid_url is empty), checked
    # against fid_sha256 (a full SHA-256 or a prefix of at least 8 hex digits).
    fid_weights: str | None = field(default_factory=lambda: os.environ.get("MISC_FID_WEIGHTS") or None)
    fid_url: str = field(default_factory=lambda: os.environ.get("MISC_FID_URL", FID_WEIGHTS_URL))
    fid_sha256: str = field(default_factory=lambda: os.environ.get("MISC_FID_SHA256") or FID_WEIGHTS_SHA256)
    device: str = field(default_factory=lambda: os.environ.get("MISC_METRICS_DEVICE", "cpu"))
    batch_size: int = 8


_config = MetricsConfig()


def get_config() -> MetricsConfig:
    return _config


def set_config(**changes) -> MetricsConfig:
    global _config
    _config = replace(_config, **changes)
    return _config
