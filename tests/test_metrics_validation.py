"""Our metrics against published reference values (pyiqa's calibration pairs) and
against the official LPIPS code.

The five TID2013 pairs come from the pyiqa 0.1.16 wheel (fetched through pip on first
use into the metrics cache, not committed: non-commercial licence). NIQE's pristine model
is fetched the same way from the basicsr sdist (metrics/fetch.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics
from metrics.fetch import fetch_calibration, fetch_niqe
from metrics.validate import PYIQA_REFERENCE, validation_rows


@pytest.fixture(scope="module")
def rows():
    fetch_calibration()
    fetch_niqe()
    metrics.configure()
    names = ["psnr", "ssim", "lpips_alex", "dists", "niqe", "piqe", "brisque_pypi"]
    return validation_rows(names)


def _pick(rows, metric, source):
    picked = [r for r in rows if r.metric == metric and r.source == source]
    assert len(picked) == 5, (metric, source)
    return picked


@pytest.mark.parametrize("metric", ["lpips_alex", "dists"])
def test_deep_metrics_within_1e3_of_official_values(rows, metric):
    for r in _pick(rows, metric, "pyiqa-csv"):
        assert r.diff <= 1e-3, r


def test_psnr_ssim_exact_to_skimage_and_match_published(rows):
    for metric in ("psnr", "ssim"):
        for r in _pick(rows, metric, "skimage"):
            assert r.diff <= 1e-9, r
        for r in _pick(rows, metric, "pyiqa-csv"):
            assert r.passed, r  # published values are rounded (PSNR 2 decimals, SSIM 4)


def test_piqe_and_brisque_pypi_match_their_references(rows):
    for r in _pick(rows, "piqe", "pyiqa-csv"):
        assert r.passed, r
    for r in _pick(rows, "brisque_pypi", "brisque pkg"):
        assert r.diff <= 1e-6, r


def test_niqe_against_matlab(rows):
    picked = {r.pair: r for r in _pick(rows, "niqe", "pyiqa-csv")}
    assert set(picked) == {"I03", "I04", "I06", "I08", "I19"}
    for r in picked.values():  # I19 has large flat areas (see test_niqe_flat_areas_are_zeros)
        assert r.diff <= 0.1, r


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_official_code_with_the_same_backbone(net):
    import lpips as official

    from metrics.lpips import LPIPS
    from tests.metrics_helpers import noisy, photo

    ours = LPIPS.from_packages(net)
    ref = official.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()
    ref_convs = [m for m in ref.net.modules() if isinstance(m, torch.nn.Conv2d)]
    our_convs = [m for m in ours.features if isinstance(m, torch.nn.Conv2d)]
    assert len(ref_convs) == len(our_convs)
    with torch.no_grad():
        for a, b in zip(ref_convs, our_convs, strict=True):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    x = np.stack([photo(64, seed=1), photo(64, seed=2)])
    y = np.stack([noisy(photo(64, seed=1), 20), noisy(photo(64, seed=2), 5)])
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    ty = torch.from_numpy(y).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = ref(tx, ty, normalize=True).flatten()
    torch.testing.assert_close(ours(tx, ty), expected, rtol=1e-5, atol=1e-6)


def test_reference_table_is_complete():
    for metric, values in PYIQA_REFERENCE.items():
        assert set(values) == {"I03", "I04", "I06", "I08", "I19"}, metric


def test_niqe_flat_areas_are_zeros():
    """MSCN is unchanged by adding a constant to the image, so NIQE must be too. In flat
    areas image - mean is rounding noise whose sign depends on the values; counting that
    noise in the AGGD fits moved I19's score between 8.76 and 9.19 for offsets 0-100."""
    from PIL import Image

    from metrics.fetch import calibration_pairs
    from metrics.images import matlab_rgb2gray
    from metrics.niqe import niqe_gray
    from tests.metrics_helpers import photo

    fetch_calibration()
    i19 = {name: dist for name, _ref, dist in calibration_pairs()}["I19"]
    gray = matlab_rgb2gray(np.asarray(Image.open(i19).convert("RGB")))
    scores = [niqe_gray(gray + c) for c in (0, 3, 17, 100.5)]
    assert max(scores) - min(scores) < 5e-3, scores

    synthetic = matlab_rgb2gray(photo(192, seed=3)).copy()
    synthetic[:, :80] = 200  # a flat band 80 pixels wide
    scores = [niqe_gray(synthetic + c) for c in (0, 3, 17)]
    assert max(scores) - min(scores) < 1e-6, scores
