"""Maps → grids as MISC makes them, painted masks → grids, grids → pixel masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.transform import resize

from codec.maps import grid_to_mask, mask_to_grid, to_grid


def _misc_mask_block(simmap: np.ndarray, num: int = 8, level: float = 0.35) -> np.ndarray:
    """MISC's notebook recipe, written out independently: the map as uint8, shrunk by
    skimage's resize (defaults: anti-aliasing, reflect), thresholded."""
    tmp = resize((simmap * 255).astype("uint8"), (num, num), mode="reflect")
    return tmp > level


def test_to_grid_matches_misc_recipe_on_random_smooth_maps():
    rng = np.random.default_rng(3)
    for shape in ((224, 224), (300, 451), (37, 20)):
        from scipy.ndimage import gaussian_filter

        m = gaussian_filter(rng.standard_normal(shape), 6)
        m = (m - m.min()) / (m.max() - m.min())
        for num in (8, 4, 16):
            np.testing.assert_array_equal(to_grid(m, num), _misc_mask_block(m, num))


def test_to_grid_puts_a_bright_corner_in_the_corner():
    m = np.zeros((64, 96))
    m[:32, :48] = 1.0
    g = to_grid(m)
    assert g.dtype == bool and g.shape == (8, 8)
    assert g[:3, :3].all() and not g[5:, :].any() and not g[:, 5:].any()


def test_to_grid_threshold_and_rectangular_size():
    m = np.full((40, 40), 0.5)
    assert to_grid(m, threshold=0.35).all()
    assert not to_grid(m, threshold=0.6).any()
    assert to_grid(m, size=(4, 6)).shape == (4, 6)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((8, 8), np.nan), "NaN"),
        (np.full((8, 8), 1.5), r"\[0, 1\]"),
        (np.zeros((2, 8, 8)), "2-D"),
        (np.zeros((0, 8)), "2-D"),
    ],
)
def test_to_grid_refuses_bad_maps(bad, match):
    with pytest.raises(ValueError, match=match):
        to_grid(bad)


def test_grid_size_is_bounded():
    with pytest.raises(ValueError, match="outside"):
        to_grid(np.zeros((8, 8)), size=33)
    with pytest.raises(ValueError, match="outside"):
        mask_to_grid(np.zeros((8, 8), bool), size=0)


def test_painted_rgba_layer_becomes_a_grid_by_alpha():
    """The demo's editor gives an RGBA layer: painted where alpha > 0, whatever the colour."""
    layer = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 200), (0, 0, 100, 50))  # the top-left quarter
    g = mask_to_grid(layer)
    expected = np.zeros((8, 8), bool)
    expected[:4, :4] = True
    np.testing.assert_array_equal(g, expected)


def test_mask_kinds_agree():
    m = np.zeros((64, 64), bool)
    m[8:40, 16:64] = True
    ref = mask_to_grid(m)
    for variant in (
        m.astype(np.uint8) * 255,
        m.astype(np.float32),
        Image.fromarray(m.astype(np.uint8) * 255),
        np.repeat(m[..., None], 3, axis=2).astype(np.uint8) * 255,
        np.dstack([np.zeros((64, 64, 3), np.uint8), m.astype(np.uint8) * 255]),
    ):
        np.testing.assert_array_equal(mask_to_grid(variant), ref)


def test_coverage_decides_partly_painted_cells():
    m = np.zeros((80, 80), bool)
    m[:, :3] = True  # 3 of 10 columns of the first grid column are painted
    assert not mask_to_grid(m, coverage=0.5)[:, 0].any()
    assert mask_to_grid(m, coverage=0.3)[:, 0].all()
    assert not mask_to_grid(np.zeros((80, 80), bool), coverage=0.0).any()  # nothing painted: off
    with pytest.raises(ValueError):
        mask_to_grid(m, coverage=1.5)


@pytest.mark.parametrize("w, h", [(512, 512), (500, 333), (9, 8), (8, 8), (1000, 17)])
def test_grid_to_mask_and_back_is_exact(w, h):
    rng = np.random.default_rng(w * h)
    g = rng.random((8, 8)) < 0.4
    mask = grid_to_mask(g, w, h)
    assert mask.shape == (h, w) and mask.dtype == bool
    np.testing.assert_array_equal(mask_to_grid(mask, 8), g)


def test_tiny_masks_still_give_a_full_grid():
    m = np.array([[1, 0], [0, 1]], bool)
    g = mask_to_grid(m, 8)
    expected = np.zeros((8, 8), bool)
    expected[:4, :4] = expected[4:, 4:] = True
    np.testing.assert_array_equal(g, expected)
    assert grid_to_mask(g, 3, 2).shape == (2, 3)


def test_bad_masks_are_refused():
    with pytest.raises(ValueError):
        mask_to_grid(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError):
        mask_to_grid(np.full((4, 4), np.nan))
    with pytest.raises(ValueError):
        grid_to_mask(np.zeros((8, 8), bool), 0, 10)
