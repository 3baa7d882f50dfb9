"""The Inception network of FID, exactly as pytorch-fid builds it, from a local file.

FID is only FID with the TF-ported 2015-12-05 Inception (pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth``) and pytorch-fid's patched blocks. We assemble
torchvision's Inception v3 (1008 classes, no aux head) with pytorch-fid's FIDInception*
blocks, load the state dict with weights_only=True from the user's file (pytorch-fid
itself would download it and unpickle it unrestricted), and tap pool3 (2048-d) after the
same bilinear resize to 299x299 and scaling to [-1, 1].
"""

from __future__ import annotations

import hashlib
import os

import torch
import torch.nn.functional as F
from torch import nn

from .weights import load_torch_state

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"  # pytorch-fid names the file after its hash


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
    def from_file(cls, path: str | os.PathLike) -> InceptionPool3:
        net = fid_inception_v3()
        net.load_state_dict(load_torch_state(path))
        return cls(net, label=f"FID Inception from {os.fspath(path)}").eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        return self.body(x).flatten(1)


def sha256_prefix(path: str | os.PathLike, length: int = 8) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]
