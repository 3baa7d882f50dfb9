"""Set-level metrics: the Frechet distance, KID, FD-VGG16, and FID's Inception plumbing.

FID itself needs pytorch-fid's Inception weights, which do not install offline; the
Inception test uses random weights saved to a file and checks that our network gives
exactly pytorch-fid's features for them (plumbing, not quality).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics
from metrics.frechet import _poly_mmd2_unbiased, frechet_distance, gaussian_stats, kernel_distance
from tests.metrics_helpers import noisy, photo


@pytest.fixture(autouse=True)
def _reset():
    metrics.configure(fid_weights=None)
    yield
    metrics.configure(fid_weights=None)


@pytest.mark.parametrize("n,d", [(200, 8), (10, 32)])
def test_frechet_matches_pytorch_fid(n, d):
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, d))
    b = rng.normal(0.3, 1.5, size=(n, d))
    ours = frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    try:
        ref = calculate_frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    except TypeError:  # scipy >= 1.16 dropped sqrtm's `disp`; compute pytorch-fid's formula directly
        from scipy import linalg

        (m1, s1), (m2, s2) = gaussian_stats(a), gaussian_stats(b)
        covmean = linalg.sqrtm(s1 @ s2).real
        ref = float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-6)
    assert frechet_distance(*gaussian_stats(a), *gaussian_stats(a)) == pytest.approx(0.0, abs=1e-8)


def test_kid_estimator_is_the_unbiased_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.5, 1, size=(6, 5))

    def k(a, b):
        return (a @ b / 5 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / (6 * 5)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(6)) / (7 * 6)
    assert _poly_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy)
    far = kernel_distance(rng.normal(size=(60, 5)), rng.normal(2, 1, size=(60, 5)), subsets=10)
    near = kernel_distance(rng.normal(size=(60, 5)), rng.normal(size=(60, 5)), subsets=10)
    assert far > near


def test_fd_vgg16_zero_for_same_set_and_grows_with_distortion():
    refs = [photo(96, seed=s) for s in range(3)]
    values_same = metrics.compute_set(refs, [r.copy() for r in refs], ["fd_vgg16"], progress=False)
    assert values_same["fd_vgg16"] == pytest.approx(0.0, abs=1e-6)
    mild = metrics.compute_set(refs, [noisy(r, 8) for r in refs], ["fd_vgg16"], progress=False)["fd_vgg16"]
    strong = metrics.compute_set(refs, [noisy(r, 60) for r in refs], ["fd_vgg16"], progress=False)["fd_vgg16"]
    assert 0 < mild < strong


def test_inception_matches_pytorch_fid_and_fid_kid_run_from_a_weights_file(tmp_path, monkeypatch):
    import pytorch_fid.inception as pfi

    from metrics.inception import InceptionPool3, fid_inception_v3

    torch.manual_seed(0)
    state = fid_inception_v3().state_dict()
    # Random weights, but made non-degenerate (BN stats) so features differ per image.
    path = tmp_path / "random_inception.pth"
    torch.save(state, path)

    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: torch.load(path, weights_only=True))
    reference_net = pfi.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    ours = InceptionPool3.from_file(path)

    x = torch.rand(1, 3, 80, 96)
    with torch.no_grad():
        expected = reference_net(x)[0].flatten(1)
    torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)

    metrics.configure(fid_weights=str(path))
    assert metrics.available(["fid", "kid"])["fid"][0]
    refs = [photo(64, seed=s) for s in range(2)]
    out = metrics.compute_set(refs, [noisy(r, 30) for r in refs], ["fid", "kid"], progress=False)
    assert np.isfinite(out["fid"]) and out["fid"] >= 0 and np.isfinite(out["kid"])
