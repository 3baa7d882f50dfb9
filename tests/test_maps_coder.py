"""The MAPS payload: exact round trips, compactness on smooth maps, refusal of damage."""

from __future__ import annotations

import random

import numpy as np
import pytest

from codec.entropy import PROB_ONE, BinaryDecoder, BinaryEncoder
from codec.errors import BitstreamError
from codec.maps import compress_grids, decompress_grids
from codec.maps.bench import fit_priors, measure, synthetic_grids
from codec.maps.grid_coder import _P_FEW, MAX_ITEMS, PRIORS


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == bool and x.shape == y.shape and (x == y).all() for x, y in zip(b, a, strict=True)
    )


@pytest.fixture(scope="module")
def blob_grids() -> list[np.ndarray]:
    return synthetic_grids("blobs", 150, 8, seed=0, side=112)


def test_arithmetic_coder_round_trips_any_bits_at_any_probability():
    rng = random.Random(7)
    for trial in range(400):
        n = rng.randint(0, 200)
        ps = [
            rng.choice([1, 2, 100, PROB_ONE // 2, PROB_ONE - 1, rng.randint(1, PROB_ONE - 1)])
            for _ in range(n)
        ]
        # Half the trials draw bits from the model, half against it (worst-case, long codes).
        bits = [int(rng.random() < p / PROB_ONE) if trial % 2 else rng.randint(0, 1) for p in ps]
        enc = BinaryEncoder()
        for b, p in zip(bits, ps, strict=True):
            enc.encode(b, p)
        data = enc.finish()
        assert not data or data[-1] != 0  # trailing zero bytes are implicit
        dec = BinaryDecoder(data)
        assert [dec.decode(p) for p in ps] == bits


def test_arithmetic_coder_refuses_impossible_probabilities():
    with pytest.raises(ValueError):
        BinaryEncoder().encode(1, 0)
    with pytest.raises(ValueError):
        BinaryEncoder().encode(0, PROB_ONE)


@pytest.mark.parametrize("shape", [(8, 8), (1, 1), (1, 32), (32, 1), (5, 7), (16, 16), (32, 32)])
def test_round_trip_random_zero_one_grids_of_every_shape(shape):
    rng = np.random.default_rng(sum(shape))
    for p_on in (0.0, 1.0, 0.1, 0.5, 0.9):
        grids = [rng.random(shape) < p_on for _ in range(3)]
        assert _same(grids, decompress_grids(compress_grids(grids)))


def test_round_trip_counts_from_zero_to_max_items():
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 3, MAX_ITEMS):
        grids = [rng.random((8, 8)) < 0.4 for _ in range(n)]
        out = decompress_grids(compress_grids(grids))
        assert _same(grids, out)


def test_accepts_zero_one_integer_grids_and_a_3d_stack():
    g = np.zeros((2, 8, 8), dtype=np.uint8)
    g[0, 2:5, 3:6] = 1
    assert compress_grids(g) == compress_grids([g[0].astype(bool), g[1].astype(bool)])


def test_uniform_grids_cost_almost_nothing():
    zeros = [np.zeros((8, 8), bool)] * 3
    ones = [np.ones((8, 8), bool)] * 3
    assert len(compress_grids(zeros)) <= 4
    assert len(compress_grids(ones)) <= 5


def test_payload_format_is_pinned():
    """A change to the priors, contexts or header changes these bytes: bump the format."""
    g = np.zeros((8, 8), bool)
    g[2:6, 1:5] = True
    h = np.zeros((8, 8), bool)
    h[0:3, 4:8] = True
    assert compress_grids([g, h]).hex() == PINNED_HEX


PINNED_HEX = "b394dfb8935d"


def test_smooth_maps_cost_well_under_64_bits_per_item(blob_grids):
    r = measure(blob_grids, items=3)
    print(f"\nsynthetic blob maps (not CLIP output): {r['bits_per_item']:.1f} bits per 8x8 item, raw 64")
    assert r["bits_per_item"] < 40


def test_priors_are_what_the_fitting_recipe_gives_on_its_data():
    """PRIORS must be reproducible: the fit on a small sample lands close to the table."""
    sample = synthetic_grids("blobs", 120, 8, seed=100, side=112) + synthetic_grids(
        "fields", 120, 8, seed=100, side=112
    )
    fitted = fit_priors(sample)
    p_table = np.array([o / (z + o) for z, o in PRIORS])
    p_fit = np.array([o / (z + o) for z, o in fitted])
    assert np.abs(p_table - p_fit).mean() < 0.1


def test_empty_oversized_and_padded_payloads_are_refused():
    good = compress_grids([np.eye(8, dtype=bool)])
    for bad in (b"", good + b"\x00", good + b"\x01", b"\xff" * 5000):
        with pytest.raises(BitstreamError):
            decompress_grids(bad)
    with pytest.raises(TypeError):
        decompress_grids("not bytes")  # type: ignore[arg-type]


def test_item_count_above_the_bound_is_refused():
    enc = BinaryEncoder()
    enc.encode_raw(1, 1)  # 8x8
    enc.encode(0, _P_FEW)  # not 1..4 items: a 5-bit count follows
    enc.encode_raw(MAX_ITEMS + 1, 5)
    with pytest.raises(BitstreamError, match="items"):
        decompress_grids(enc.finish() + b"\x55" * 40)


def test_truncated_and_bit_flipped_payloads_are_refused(blob_grids):
    """Every damaged payload raises BitstreamError or, rarely (about 1 in 256, when the
    damage happens to form another valid payload), decodes to grids that re-encode to it;
    nothing else ever escapes."""
    caught = total = 0
    for i in range(0, 60, 3):
        data = compress_grids(blob_grids[i : i + 3])
        damaged = [data[:n] for n in range(len(data))]
        damaged += [
            bytes(b ^ (0x80 >> k) if j == pos else b for j, b in enumerate(data))
            for pos in range(len(data))
            for k in (0, 3, 7)
        ]
        for d in damaged:
            total += 1
            try:
                out = decompress_grids(d)
            except BitstreamError:
                caught += 1
            else:
                assert compress_grids(out) == d
    assert caught / total > 0.97


@pytest.mark.parametrize(
    "grids, match",
    [
        ([np.zeros((8, 8), bool)] * (MAX_ITEMS + 1), "at most"),
        ([np.zeros((8, 8), bool), np.zeros((4, 4), bool)], "one shape"),
        ([np.zeros((33, 8), bool)], "outside"),
        ([np.zeros((0, 8), bool)], "outside"),
        ([np.zeros((2, 8, 8), bool)], "2-D"),
        ([np.full((8, 8), 2)], "booleans"),
    ],
)
def test_bad_grids_are_refused_by_the_encoder(grids, match):
    with pytest.raises(ValueError, match=match):
        compress_grids(grids)


def test_the_grid_side_of_the_package_does_not_import_torch():
    """A decoder reads MAPS payloads without paying for torch or open_clip."""
    import subprocess
    import sys

    code = "import sys, codec.maps; sys.exit(int('torch' in sys.modules or 'open_clip' in sys.modules))"
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
