"""From maps to coarse binary grids and back.

MISC sends one coarse on/off grid per item: the CLIP Surgery similarity map, stored as
8-bit (``(map * 255).astype(uint8)``), shrunk to 8×8 by ``skimage.transform.resize``
(bilinear, anti-aliased, ``mode='reflect'``) and thresholded at 0.35; the decoder blows
each cell back up to a block of pixels. ``to_grid`` does exactly that, ``grid_to_mask``
is the decoder's side, and ``mask_to_grid`` turns a mask a person painted (the demo's
map editor) into the same kind of grid, so both sources meet one coder and one decoder.

A grid is a 2-D ``bool`` array of shape (rows, cols) over the whole picture, whatever its
aspect ratio (MISC uses a square grid on non-square images too).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_SIZE = 8
DEFAULT_THRESHOLD = 0.35
MAX_GRID_SIDE = 32


def grid_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalise ``size`` (an int for a square grid, or (rows, cols)) and bound it."""
    rows, cols = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    rows, cols = int(rows), int(cols)
    if not (1 <= rows <= MAX_GRID_SIDE and 1 <= cols <= MAX_GRID_SIDE):
        raise ValueError(f"grid size {rows}x{cols} outside 1..{MAX_GRID_SIDE} per side")
    return rows, cols


def to_grid(
    simmap: np.ndarray, size: int | tuple[int, int] = DEFAULT_SIZE, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """A similarity map in [0, 1] (any resolution, H×W) → a bool grid, as MISC makes it.

    The map must already be normalised to [0, 1] (``ClipSurgery.similarity_maps`` min-max
    normalises each map over its patch tokens, as CLIP Surgery's ``get_similarity_map``
    does); the threshold is absolute on that scale.
    """
    from skimage.transform import resize  # only the encoder side needs it

    rows, cols = grid_shape(size)
    m = np.asarray(simmap, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"a similarity map must be a non-empty 2-D array, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("similarity map contains NaN or infinity")
    if m.min() < -1e-6 or m.max() > 1 + 1e-6:
        raise ValueError(f"similarity map must lie in [0, 1], got [{m.min():.4g}, {m.max():.4g}]")
    # MISC keeps the map as 8-bit before shrinking it; reproduce that truncation.
    m = np.floor(np.clip(m, 0.0, 1.0) * 255.0) / 255.0
    small = resize(m, (rows, cols), order=1, mode="reflect", anti_aliasing=True)
    return small > threshold


def _painted(mask: np.ndarray | Image.Image) -> np.ndarray:
    """Which pixels of a user's mask are painted, as a 2-D bool array.

    Accepted: a PIL image (alpha > 0 if it has alpha, else luminance ≥ 128), or an array:
    2-D bool / integer (non-zero), 2-D float (≥ 0.5), H×W×4 (alpha > 0), H×W×3 (any
    channel ≥ 128 for integers, ≥ 0.5 for floats).
    """
    if isinstance(mask, Image.Image):
        if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
            return np.asarray(mask.convert("RGBA"))[..., 3] > 0
        return np.asarray(mask.convert("L")) >= 128
    a = np.asarray(mask)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        if a.shape[2] == 4:
            return a[..., 3] > 0
        a = a.max(axis=2)
        return a >= 0.5 if np.issubdtype(a.dtype, np.floating) else a >= 128
    if a.ndim != 2:
        raise ValueError(f"a mask must be 2-D (or H×W×3/4), got shape {a.shape}")
    if a.dtype == bool:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("mask contains NaN or infinity")
        return a >= 0.5
    if np.issubdtype(a.dtype, np.integer):
        return a != 0
    raise ValueError(f"unsupported mask dtype {a.dtype}")


def _cell_edges(length: int, cells: int) -> np.ndarray:
    """Pixel edges of ``cells`` near-equal blocks along an axis of ``length`` pixels."""
    return (np.arange(cells + 1) * length) // cells


def mask_to_grid(
    mask: np.ndarray | Image.Image, size: int | tuple[int, int] = DEFAULT_SIZE, coverage: float = 0.5
) -> np.ndarray:
    """A painted mask (any resolution) → a bool grid: a cell is on when at least
    ``coverage`` of its pixels are painted (and at least one is).

    Cells are the same pixel blocks ``grid_to_mask`` fills, so ``mask_to_grid(
    grid_to_mask(g, w, h), g.shape)`` gives back ``g`` whenever the picture has at least
    as many pixels as the grid has cells along each side.
    """
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be in [0, 1], got {coverage}")
    rows, cols = grid_shape(size)
    painted = _painted(mask)
    h, w = painted.shape
    if h == 0 or w == 0:
        raise ValueError("mask is empty")
    # A mask smaller than the grid: repeat pixels so every cell owns at least one.
    painted = np.repeat(painted, -(-rows // h), axis=0) if h < rows else painted
    painted = np.repeat(painted, -(-cols // w), axis=1) if w < cols else painted
    h, w = painted.shape
    counts = np.add.reduceat(
        np.add.reduceat(painted.astype(np.int64), _cell_edges(h, rows)[:-1], axis=0),
        _cell_edges(w, cols)[:-1],
        axis=1,
    )
    areas = np.outer(np.diff(_cell_edges(h, rows)), np.diff(_cell_edges(w, cols)))
    return (counts > 0) & (counts >= coverage * areas)


def grid_to_mask(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """A grid → a bool mask of ``height``×``width`` pixels, each cell a block of pixels."""
    g = np.asarray(grid)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"a grid must be a non-empty 2-D array, got shape {g.shape}")
    if width < 1 or height < 1:
        raise ValueError(f"mask size must be positive, got {width}x{height}")
    rows, cols = g.shape
    row_of = np.searchsorted(_cell_edges(height, rows), np.arange(height), side="right") - 1
    col_of = np.searchsorted(_cell_edges(width, cols), np.arange(width), side="right") - 1
    # With fewer pixels than cells some cells own no pixel; searchsorted picks the last
    # cell starting at or before each pixel, so every pixel still maps to one cell.
    return g.astype(bool)[np.ix_(row_of, col_of)]
