"""What each metric is: its display name, direction, kind and what it needs.

The study correlates MOS with metrics and the bench plots them, and both need to know
which way is better and what to print: that lives here, in one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["full-reference", "no-reference", "semantic", "set"]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    display_name: str
    higher_is_better: bool
    kind: Kind
    description: str
    needs_text: bool = False  # CLIP-T scores an image against a caption
    unit: str = ""


_ALL = [
    MetricInfo(
        "psnr", "PSNR", True, "full-reference", "PSNR over RGB, peak 255 (skimage's definition)", unit="dB"
    ),
    MetricInfo("ssim", "SSIM", True, "full-reference", "SSIM (Wang's ssim_index.m) on MATLAB rgb2gray"),
    MetricInfo(
        "ms_ssim", "MS-SSIM", True, "full-reference", "MS-SSIM (Wang's msssim.m, 5 scales) on rgb2gray"
    ),
    MetricInfo("lpips_alex", "LPIPS-alex", False, "full-reference", "LPIPS v0.1, AlexNet backbone"),
    MetricInfo("lpips_vgg", "LPIPS-vgg", False, "full-reference", "LPIPS v0.1, VGG16 backbone"),
    MetricInfo("dists", "DISTS", False, "full-reference", "DISTS (official weights)"),
    MetricInfo(
        "niqe", "NIQE", False, "no-reference", "NIQE (original MATLAB algorithm, LIVE pristine model)"
    ),
    MetricInfo("piqe", "PIQE", False, "no-reference", "PIQE (pypiqe, follows MATLAB's piqe)"),
    MetricInfo(
        "brisque_pypi",
        "BRISQUE-pypi",
        False,
        "no-reference",
        "BRISQUE features with the SVR shipped by the `brisque` PyPI package (retrained: not LIVE's model)",
    ),
    MetricInfo(
        "clip_i",
        "CLIP-I",
        True,
        "semantic",
        "cosine similarity of CLIP image embeddings (reference vs distorted)",
    ),
    MetricInfo(
        "clip_t",
        "CLIP-T",
        True,
        "semantic",
        "100 x cosine of CLIP embeddings of the distorted image and a caption",
        needs_text=True,
    ),
    MetricInfo(
        "fid", "FID", False, "set", "Frechet Inception Distance (pytorch-fid's Inception, pool3, 2048-d)"
    ),
    MetricInfo(
        "kid", "KID", False, "set", "Kernel Inception Distance (cubic polynomial kernel MMD^2, unbiased)"
    ),
    MetricInfo("fd_clip", "FD-CLIP", False, "set", "Frechet distance on CLIP image embeddings"),
    MetricInfo(
        "fd_vgg16",
        "FD-VGG16",
        False,
        "set",
        "Frechet distance on ImageNet VGG16 conv5_3 pooled features (not FID)",
    ),
]

METRICS: dict[str, MetricInfo] = {m.name: m for m in _ALL}
PAIR_METRICS = [m.name for m in _ALL if m.kind != "set"]
SET_METRICS = [m.name for m in _ALL if m.kind == "set"]


def info(name: str) -> MetricInfo:
    from .errors import UnknownMetricError

    try:
        return METRICS[name]
    except KeyError:
        raise UnknownMetricError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
