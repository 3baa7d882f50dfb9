"""PIQE (Venkatanath et al. 2015) through ``pypiqe``, a port of MATLAB's ``piqe``.

pypiqe converts colour with OpenCV's BGR2GRAY, so the RGB array is handed over in BGR
order to get the usual luma weights. Score in [0, 100]; lower is better.
"""

from __future__ import annotations

import numpy as np

from .images import require_min_size


def piqe(image: np.ndarray) -> float:
    """PIQE of an HxWx3 uint8 RGB array."""
    from pypiqe import piqe as _piqe

    require_min_size(image, 16, "PIQE")
    score, _artifacts, _noise, _activity = _piqe(np.ascontiguousarray(image[..., ::-1]))
    return float(score)
