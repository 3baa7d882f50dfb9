"""The Inception network of FID, exactly as pytorch-fid builds it, and its weights.

FID is only FID with the TF-ported 2015-12-05 Inception (pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth``) and pytorch-fid's patched blocks. We assemble
torchvision's Inception v3 (1008 classes, no aux head) with pytorch-fid's FIDInception*
blocks, load the state dict with weights_only=True (pytorch-fid itself would unpickle it
unrestricted), and tap pool3 (2048-d) after the same bilinear resize to 299x299 and
scaling to [-1, 1].

Where the weights come from (``fid_weights_path``):

    MISC_FID_WEIGHTS=<file>  ─► that file (labelled if it is not the published one)
    else, network allowed    ─► MISC_FID_URL (pytorch-fid's release) ─► SHA-256 check
                                (MISC_FID_SHA256) ─► cache (metrics/fetch.py) ─► load
    else                     ─► FID / KID unavailable, with the reason

The published hash is only the 8-hex-digit prefix in the file name (what torch.hub
checks): a download whose SHA-256 does not start with it is refused. 32 bits do not stop
a deliberate forgery, which is why the file is also loaded as plain tensors only and into
a fixed architecture (strict state-dict keys and shapes).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import config as _config
from .fetch import cache_dir, fetch_url, matches, sha256_file
from .weights import WeightsNotFoundError, load_torch_state

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = _config.FID_WEIGHTS_SHA256  # pytorch-fid names the file after its hash
FID_MAX_BYTES = 200 * 1024 * 1024  # the published file is about 91 MiB


def downloads_allowed() -> bool:
    """False where the machine is declared offline (HF_HUB_OFFLINE=1, as on the project's CI)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on")


def weights_label(path: str | os.PathLike, digest: str, origin: str) -> str:
    """How FID's weights are named wherever a value is shown: published or not, and from where."""
    if matches(digest, FID_WEIGHTS_SHA256_PREFIX):
        return f"pytorch-fid Inception 2015-12-05 ({origin}; SHA-256 {digest[:16]}...)"
    return (
        f"NOT pytorch-fid's published Inception weights (SHA-256 {digest[:16]}... does not start with "
        f"{FID_WEIGHTS_SHA256_PREFIX}; e.g. random weights): values are not comparable FID ({origin})"
    )


def fid_weights_path(cfg: _config.MetricsConfig | None = None, *, allow_download: bool | None = None
                     ) -> tuple[Path, str]:  # fmt: skip
    """(weights file, label), downloading and verifying on first use when allowed.

    Raises WeightsNotFoundError or FetchError with the reason and what to set.
    """
    cfg = cfg or _config.get_config()
    if cfg.fid_weights:
        path = Path(cfg.fid_weights)
        if not path.is_file():
            raise WeightsNotFoundError(f"FID weights file not found: {path} (MISC_FID_WEIGHTS)")
        return path, weights_label(path, sha256_file(path), f"file {path}")
    allow = downloads_allowed() if allow_download is None else allow_download
    if not cfg.fid_url or not allow:
        why = "MISC_FID_URL is empty" if not cfg.fid_url else "downloads are off (HF_HUB_OFFLINE=1)"
        raise WeightsNotFoundError(
            f"no Inception weights: {why}; set MISC_FID_WEIGHTS (or configure(fid_weights=...)) to "
            f"pytorch-fid's {FID_WEIGHTS_NAME}, or allow its download on first use"
        )
    dest = cache_dir() / FID_WEIGHTS_NAME
    fetch_url(cfg.fid_url, cfg.fid_sha256, dest, label="FID Inception weights", max_bytes=FID_MAX_BYTES)
    return dest, weights_label(dest, sha256_file(dest), f"downloaded from {cfg.fid_url}, SHA-256 verified")


def fid_inception_v3() -> nn.Module:
    """Randomly initialised FID Inception (pytorch-fid's fid_inception_v3 without the download)."""
    import torchvision
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2

    net = torchvision.models.inception_v3(
        num_classes=1008, aux_logits=False, weights=None, init_weights=False
    )
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


class InceptionPool3(nn.Module):
    """x in [0, 1], Nx3xHxW (any size) → N x 2048 pool3 features."""

    def __init__(self, net: nn.Module, label: str = "FID Inception"):
        super().__init__()
        self.label = label
        self.body = nn.Sequential(
            net.Conv2d_1a_3x3,
            net.Conv2d_2a_3x3,
            net.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1,
            net.Conv2d_4a_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b,
            net.Mixed_5c,
            net.Mixed_5d,
            net.Mixed_6a,
            net.Mixed_6b,
            net.Mixed_6c,
            net.Mixed_6d,
            net.Mixed_6e,
            net.Mixed_7a,
            net.Mixed_7b,
            net.Mixed_7c,
            nn.AdaptiveAvgPool2d(output_size=(1, 1)),
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike, label: str | None = None) -> InceptionPool3:
        net = fid_inception_v3()
        net.load_state_dict(load_torch_state(path))  # strict: every key and shape must match
        label = label or f"FID Inception from {os.fspath(path)}"
        return cls(net, label=label).eval().requires_grad_(False)

    @classmethod
    def from_config(cls, cfg: _config.MetricsConfig | None = None) -> InceptionPool3:
        path, label = fid_weights_path(cfg)
        return cls.from_file(path, label)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        return self.body(x).flatten(1)
