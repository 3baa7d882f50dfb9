"""The spatial layer: where each item is, as one coarse binary grid per item.

    image, item names ──ClipSurgery──▶ similarity maps [N, H, W] in [0, 1]
                      ──to_grid (8×8, > 0.35)──▶ bool grids ──compress_grids──▶ MAPS bytes
    painted masks ──mask_to_grid──────────────────────▲
    MAPS bytes ──decompress_grids──▶ bool grids ──grid_to_mask──▶ pixel masks (decoder)

The grid functions and the coder need only numpy; ``ClipSurgery`` (torch, open_clip) is
imported on first use so a decoder never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .grid_coder import MAX_ITEMS, compress_grids, decompress_grids
from .grids import DEFAULT_SIZE, DEFAULT_THRESHOLD, MAX_GRID_SIDE, grid_to_mask, mask_to_grid, to_grid

if TYPE_CHECKING:
    from .surgery import ClipSurgery, load_clip_surgery

__all__ = [
    "ClipSurgery",
    "load_clip_surgery",
    "to_grid",
    "mask_to_grid",
    "grid_to_mask",
    "compress_grids",
    "decompress_grids",
    "DEFAULT_SIZE",
    "DEFAULT_THRESHOLD",
    "MAX_GRID_SIDE",
    "MAX_ITEMS",
]


def __getattr__(name: str):
    if name in ("ClipSurgery", "load_clip_surgery"):
        from . import surgery

        return getattr(surgery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
