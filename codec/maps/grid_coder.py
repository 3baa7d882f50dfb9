"""The MAPS section: all item grids of one image, entropy coded.

MISC spends one raw bit per cell (64 bits per item at 8×8). Item maps are smooth blobs,
so a cell is well predicted by the cells already sent above and to its left. Each cell is
coded by the binary arithmetic coder (``codec.entropy``) with an adaptive probability chosen by
its context: the four causal neighbours W, N, NW, NE (16 contexts). Counts start from
small priors (``PRIORS``) and keep adapting across all grids of the payload.

Payload (every field inside the arithmetic code, so nothing is byte-aligned)::

    1 bit   1: grids are 8×8 ; 0: 5 bits rows-1, 5 bits cols-1 follow (1..32 each)
    count   1 bit at p=7/8: 1..4 items, then 2 bits count-1; else 5 bits count (0, 5..16)
    cells   row-major, grid after grid, each with its context's adaptive probability
    8 bits  check: low byte of the CRC-32 of (rows, cols, count, packed cells)

Neighbours outside the grid are replaced by known ones (N for W and NW on the left
edge, N for NE on the right edge, W for the whole row above on the top row), so edge cells
share the interior's statistics; the very first cell of each grid has its own context.

Why a check inside a file that has a CRC-32: a payload can travel alone (the demo's map
editor, tests, other containers), and an arithmetic code has almost no redundancy, so
nearly every damaged or truncated byte string decodes to *some* grids (measured: 90% of
truncations of real payloads went unnoticed without it). The 8 check bits cost one byte
per image and let through about 1 damaged payload in 256. On top of that, decoding
re-encodes what it decoded and insists on the identical bytes (one payload per grid
list), so padded or otherwise non-canonical input is refused too.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from ..entropy import PROB_ONE, BinaryDecoder, BinaryEncoder
from ..errors import BitstreamError
from .grids import DEFAULT_SIZE, MAX_GRID_SIDE

MAX_ITEMS = 16
MAX_PAYLOAD_BYTES = 4096  # 16 items × 32×32 cells at the worst probability stays far below
_SIDE_BITS = 5
_COUNT_BITS = 5
_FEW_ITEMS = 4  # MISC describes 3 items: 1..4 cost ~2.2 bits instead of 5
_P_FEW = PROB_ONE * 7 // 8
CHECK_BITS = 8

# Initial (zeros, ones) counts per context, in units of one observation. Context index:
# W | N<<1 | NW<<2 | NE<<3; index 16 is the first cell of a grid. Fitted on synthetic
# smooth maps (``python -m codec.maps.bench --fit-priors``: 1,500 grids from each of two
# families, seed 100, disjoint from the seed the benchmark reports on), at a strength of
# 16 observations per context, so a payload's own cells soon outweigh them.
PRIOR_STRENGTH = 16
PRIORS: tuple[tuple[int, int], ...] = (
    (15, 1),  # W=0 N=0 NW=0 NE=0: background
    (7, 9),  # W=1 N=0 NW=0 NE=0
    (10, 6),  # W=0 N=1 NW=0 NE=0
    (1, 15),  # W=1 N=1 NW=0 NE=0
    (16, 1),  # W=0 N=0 NW=1 NE=0
    (9, 7),  # W=1 N=0 NW=1 NE=0
    (14, 2),  # W=0 N=1 NW=1 NE=0
    (3, 13),  # W=1 N=1 NW=1 NE=0
    (12, 4),  # W=0 N=0 NW=0 NE=1
    (3, 13),  # W=1 N=0 NW=0 NE=1
    (6, 10),  # W=0 N=1 NW=0 NE=1
    (1, 16),  # W=1 N=1 NW=0 NE=1
    (14, 2),  # W=0 N=0 NW=1 NE=1
    (6, 10),  # W=1 N=0 NW=1 NE=1
    (8, 8),  # W=0 N=1 NW=1 NE=1
    (1, 15),  # W=1 N=1 NW=1 NE=1: inside an item
    (9, 7),  # first cell of a grid
)
N_CONTEXTS = len(PRIORS)
_FIRST = 16
_COUNT_SCALE = 2  # counts are kept doubled so a prior can be a half-observation later
_COUNT_LIMIT = 1 << 12  # halve both counts past this (never reached by one payload)
_P_MIN = 1 << 6
_P_MAX = PROB_ONE - (1 << 6)


class _Model:
    """Adaptive per-context counts; the probability of a 1 is n1 / (n0 + n1), in 16 bits."""

    def __init__(self) -> None:
        self.n0 = [z * _COUNT_SCALE for z, _ in PRIORS]
        self.n1 = [o * _COUNT_SCALE for _, o in PRIORS]

    def p1(self, ctx: int) -> int:
        n0, n1 = self.n0[ctx], self.n1[ctx]
        return min(_P_MAX, max(_P_MIN, (n1 * PROB_ONE) // (n0 + n1)))

    def update(self, ctx: int, bit: int) -> None:
        if bit:
            self.n1[ctx] += _COUNT_SCALE
        else:
            self.n0[ctx] += _COUNT_SCALE
        if self.n0[ctx] + self.n1[ctx] > _COUNT_LIMIT:
            self.n0[ctx] = max(1, self.n0[ctx] >> 1)
            self.n1[ctx] = max(1, self.n1[ctx] >> 1)


def context(g: list[list[int]], r: int, c: int, cols: int) -> int:
    """Context index of cell (r, c) from its causal neighbours (see the module docstring)."""
    if r == 0:
        if c == 0:
            return _FIRST
        w = g[0][c - 1]
        return w | w << 1 | w << 2 | w << 3
    up = g[r - 1]
    n = up[c]
    w = g[r][c - 1] if c > 0 else n
    nw = up[c - 1] if c > 0 else n
    ne = up[c + 1] if c + 1 < cols else n
    return w | n << 1 | nw << 2 | ne << 3


def _check_grids(grids: Sequence[np.ndarray]) -> tuple[list[np.ndarray], tuple[int, int]]:
    if isinstance(grids, np.ndarray) and grids.ndim == 3:
        grids = list(grids)
    grids = list(grids)
    if len(grids) > MAX_ITEMS:
        raise ValueError(f"{len(grids)} grids: at most {MAX_ITEMS} items have maps")
    out = []
    for i, g in enumerate(grids):
        a = np.asarray(g)
        if a.ndim != 2:
            raise ValueError(f"grid {i} must be 2-D, got shape {a.shape}")
        if a.dtype != bool:
            if not np.isin(a, (0, 1)).all():
                raise ValueError(f"grid {i} must hold only booleans or 0/1")
            a = a.astype(bool)
        out.append(a)
    shape = out[0].shape if out else (DEFAULT_SIZE, DEFAULT_SIZE)
    if any(a.shape != shape for a in out):
        raise ValueError(f"all grids of one image must have one shape, got {[a.shape for a in out]}")
    if not (1 <= shape[0] <= MAX_GRID_SIDE and 1 <= shape[1] <= MAX_GRID_SIDE):
        raise ValueError(f"grid shape {shape} outside 1..{MAX_GRID_SIDE} per side")
    return out, (int(shape[0]), int(shape[1]))


def _check_value(rows: int, cols: int, grids: list[np.ndarray]) -> int:
    cells = np.packbits(np.stack(grids).reshape(-1)) if grids else np.zeros(0, np.uint8)
    return zlib.crc32(bytes([rows, cols, len(grids)]) + cells.tobytes()) & ((1 << CHECK_BITS) - 1)


def compress_grids(grids: Sequence[np.ndarray]) -> bytes:
    """Grids (same shape, bool or 0/1, at most 16) → the MAPS section payload."""
    checked, (rows, cols) = _check_grids(grids)
    enc = BinaryEncoder()
    if (rows, cols) == (DEFAULT_SIZE, DEFAULT_SIZE):
        enc.encode_raw(1, 1)
    else:
        enc.encode_raw(0, 1)
        enc.encode_raw(rows - 1, _SIDE_BITS)
        enc.encode_raw(cols - 1, _SIDE_BITS)
    n = len(checked)
    enc.encode(int(1 <= n <= _FEW_ITEMS), _P_FEW)
    if 1 <= n <= _FEW_ITEMS:
        enc.encode_raw(n - 1, 2)
    else:
        enc.encode_raw(n, _COUNT_BITS)
    model = _Model()
    for a in checked:
        g = a.astype(np.uint8).tolist()
        for r in range(rows):
            for c in range(cols):
                ctx = context(g, r, c, cols)
                enc.encode(g[r][c], model.p1(ctx))
                model.update(ctx, g[r][c])
    enc.encode_raw(_check_value(rows, cols, checked), CHECK_BITS)
    return enc.finish()


def decompress_grids(data: bytes) -> list[np.ndarray]:
    """The MAPS section payload → the list of bool grids; ``BitstreamError`` if damaged."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise BitstreamError("MAPS payload is empty")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise BitstreamError(f"MAPS payload of {len(data)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte bound")
    dec = BinaryDecoder(data)
    if dec.decode_raw(1):
        rows = cols = DEFAULT_SIZE
    else:
        rows = dec.decode_raw(_SIDE_BITS) + 1
        cols = dec.decode_raw(_SIDE_BITS) + 1
    count = dec.decode_raw(2) + 1 if dec.decode(_P_FEW) else dec.decode_raw(_COUNT_BITS)
    if count > MAX_ITEMS:
        raise BitstreamError(f"MAPS payload claims {count} items; at most {MAX_ITEMS} are allowed")
    model = _Model()
    grids = []
    for _ in range(count):
        g = [[0] * cols for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                ctx = context(g, r, c, cols)
                bit = dec.decode(model.p1(ctx))
                model.update(ctx, bit)
                g[r][c] = bit
        grids.append(np.array(g, dtype=bool).reshape(rows, cols))
    if dec.decode_raw(CHECK_BITS) != _check_value(rows, cols, grids):
        raise BitstreamError("MAPS payload is damaged or truncated: its check value does not match")
    if compress_grids(grids) != data:
        raise BitstreamError("MAPS payload is damaged: it is not the encoding of the grids it decodes to")
    return grids


def grid_bits(grids: Sequence[np.ndarray]) -> int:
    """Size in bits of the payload for ``grids`` (a whole number of bytes, as stored)."""
    return 8 * len(compress_grids(grids))
