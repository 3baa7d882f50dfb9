"""Turning user images into the one form every metric starts from.

Every metric takes HxWx3 uint8 RGB. Converting once, at the edge, with clear errors,
keeps each metric free of format checks and makes all metrics see the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import ImageInputError, ImageSizeMismatchError

ImageLike = Image.Image | np.ndarray


def to_rgb_uint8(image: ImageLike, *, what: str = "image") -> np.ndarray:
    """Return a C-contiguous HxWx3 uint8 RGB array, or raise ImageInputError.

    Accepted: a PIL image of any mode (converted to RGB; alpha is dropped), or a numpy
    uint8 array of shape HxWx3. Other arrays are refused rather than guessed at, since a
    float array in [0, 1] and one in [0, 255] would silently give different scores.
    """
    if isinstance(image, Image.Image):
        try:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except Exception as exc:  # a truncated file surfaces here, not at open()
            raise ImageInputError(f"{what}: cannot decode the PIL image ({exc})") from exc
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageInputError(f"{what}: expected a uint8 array, got dtype {image.dtype}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ImageInputError(f"{what}: expected shape HxWx3, got {tuple(image.shape)}")
        array = image
    else:
        raise ImageInputError(
            f"{what}: expected a PIL.Image or an HxWx3 uint8 numpy array, got {type(image).__name__}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageInputError(f"{what}: empty image {tuple(array.shape)}")
    return np.ascontiguousarray(array)


def check_pair(reference: ImageLike, distorted: ImageLike) -> tuple[np.ndarray, np.ndarray]:
    """Convert a full-reference pair and require equal sizes."""
    ref = to_rgb_uint8(reference, what="reference")
    dist = to_rgb_uint8(distorted, what="distorted")
    if ref.shape != dist.shape:
        raise ImageSizeMismatchError(
            f"reference is {ref.shape[1]}x{ref.shape[0]} but distorted is "
            f"{dist.shape[1]}x{dist.shape[0]} (width x height); full-reference metrics need equal sizes"
        )
    return ref, dist


def require_min_size(array: np.ndarray, min_side: int, metric: str) -> None:
    """Raise ImageInputError when an image is too small for a metric's windows/blocks."""
    h, w = array.shape[:2]
    if min(h, w) < min_side:
        raise ImageInputError(f"{metric} needs images of at least {min_side}x{min_side} pixels, got {w}x{h}")


def matlab_rgb2gray(rgb: np.ndarray) -> np.ndarray:
    """MATLAB's rgb2gray on uint8 input: the Rec.601 weights it uses, rounded back to uint8.

    The MATLAB reference scripts (SSIM, MS-SSIM, NIQE) that published values come from
    were run on rgb2gray output, so matching them needs this exact rounding.
    Returns float64 values that are whole numbers in [0, 255].
    """
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.298936021293775 * r + 0.587043074451121 * g + 0.114020904255103 * b
    return np.clip(np.floor(y + 0.5), 0, 255)


def to_float_tensor(arrays: list[np.ndarray]):
    """Stack HxWx3 uint8 arrays into an Nx3xHxW float32 torch tensor in [0, 1]."""
    import torch

    batch = np.stack(arrays).astype(np.float32) / 255.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
