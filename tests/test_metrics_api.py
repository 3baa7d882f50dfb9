"""The public API of metrics/: names, directions, availability, errors, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import metrics
from tests.metrics_helpers import noisy, photo


@pytest.fixture(autouse=True)
def _fresh_config():
    metrics.configure(fid_weights=None)
    yield
    metrics.configure(fid_weights=None)


def test_registry_has_display_names_and_directions():
    for name, meta in metrics.METRICS.items():
        assert meta.name == name and meta.display_name and meta.kind
    assert metrics.METRICS["psnr"].higher_is_better
    assert metrics.METRICS["ssim"].higher_is_better
    assert metrics.METRICS["clip_i"].higher_is_better
    for lower in (
        "lpips_alex",
        "lpips_vgg",
        "dists",
        "niqe",
        "piqe",
        "brisque_pypi",
        "fid",
        "kid",
        "fd_vgg16",
    ):
        assert not metrics.METRICS[lower].higher_is_better, lower
    # The offline Frechet distance is never called FID.
    assert metrics.METRICS["fd_vgg16"].display_name == "FD-VGG16"
    assert "FID" not in metrics.METRICS["fd_vgg16"].display_name
    assert metrics.METRICS["brisque_pypi"].display_name == "BRISQUE-pypi"
    assert set(metrics.SET_METRICS) == {"fid", "kid", "fd_clip", "fd_vgg16"}


def test_available_reports_every_metric_with_a_reason():
    report = metrics.available()
    assert set(report) == set(metrics.METRICS)
    for ok, reason in report.values():
        assert isinstance(ok, bool) and isinstance(reason, str) and reason
    for name in (
        "psnr",
        "ssim",
        "ms_ssim",
        "lpips_alex",
        "lpips_vgg",
        "dists",
        "piqe",
        "brisque_pypi",
        "fd_vgg16",
    ):
        assert report[name][0], (name, report[name])
    ok, reason = report["fid"]
    assert not ok and "MISC_FID_WEIGHTS" in reason
    # No CLIP weights on this machine (HF_HUB_OFFLINE=1): unavailable with the model named.
    ok, reason = report["clip_i"]
    assert not ok and "ViT-B-32" in reason


def test_unavailable_metric_asked_by_name_raises_with_reason(tmp_path):
    with pytest.raises(metrics.MetricUnavailableError, match="MISC_FID_WEIGHTS"):
        metrics.compute_set([photo()] * 2, [photo()] * 2, ["fid"])
    metrics.configure(fid_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(metrics.MetricUnavailableError, match="not found"):
        metrics.compute_set([photo()] * 2, [photo()] * 2, ["kid"])


def test_identical_images():
    img = photo(192)
    values = metrics.compute(img, img.copy(), ["psnr", "ssim", "ms_ssim", "lpips_alex", "dists"])
    assert values["psnr"] == math.inf
    assert values["ssim"] == pytest.approx(1.0)
    assert values["ms_ssim"] == pytest.approx(1.0)
    assert values["lpips_alex"] == pytest.approx(0.0, abs=1e-6)
    assert values["dists"] == pytest.approx(0.0, abs=1e-3)


def test_more_noise_scores_worse_on_every_full_reference_metric():
    img = photo(192)
    mild, strong = noisy(img, 5), noisy(img, 40)
    a = metrics.compute(img, mild, ["psnr", "ssim", "ms_ssim", "lpips_alex", "lpips_vgg", "dists"])
    b = metrics.compute(img, strong, ["psnr", "ssim", "ms_ssim", "lpips_alex", "lpips_vgg", "dists"])
    for name in a:
        better = (a[name] > b[name]) if metrics.METRICS[name].higher_is_better else (a[name] < b[name])
        assert better, (name, a[name], b[name])


def test_pil_and_array_inputs_agree():
    img, dist = photo(64), noisy(photo(64), 10)
    from_arrays = metrics.compute(img, dist, ["psnr", "lpips_alex"])
    rgba = Image.fromarray(dist).convert("RGBA")
    from_pil = metrics.compute(Image.fromarray(img), rgba, ["psnr", "lpips_alex"])
    assert from_arrays == pytest.approx(from_pil)


def test_bad_inputs_get_typed_errors():
    img = photo(64)
    with pytest.raises(metrics.ImageSizeMismatchError, match="64x64"):
        metrics.compute(img, photo(48), ["psnr"])
    with pytest.raises(metrics.ImageInputError, match="uint8"):
        metrics.compute(img, img.astype(np.float32), ["psnr"])
    with pytest.raises(metrics.ImageInputError, match="HxWx3"):
        metrics.compute(img, img[..., 0].copy(), ["psnr"])
    with pytest.raises(metrics.ImageInputError, match="PIL.Image"):
        metrics.compute(img, "not an image", ["psnr"])
    with pytest.raises(metrics.ImageInputError, match="MS-SSIM"):
        metrics.compute(img, img, ["ms_ssim"])  # 64 px < 176 px needed by five scales
    with pytest.raises(metrics.UnknownMetricError, match="nope"):
        metrics.compute(img, img, ["nope"])
    with pytest.raises(metrics.MetricInputError, match="compute_set"):
        metrics.compute(img, img, ["fd_vgg16"])
    with pytest.raises(metrics.MetricInputError, match="reference"):
        metrics.compute(None, img, ["psnr"])
    with pytest.raises(metrics.MetricInputError, match="2 images"):
        metrics.compute_set([img], [img], ["fd_vgg16"])


def test_no_reference_metrics_without_a_reference():
    img = noisy(photo(128), 10)
    values = metrics.compute(None, img, ["piqe", "brisque_pypi"])
    assert 0.0 <= values["piqe"] <= 100.0
    assert math.isfinite(values["brisque_pypi"])


def test_default_names_are_the_available_pair_metrics():
    img = photo(192)
    values = metrics.compute(img, noisy(img, 10))
    expected = {
        n for n in metrics.PAIR_METRICS if metrics.available([n])[n][0] and not metrics.METRICS[n].needs_text
    }
    assert set(values) == expected


def test_batch_equals_one_by_one_including_mixed_sizes():
    refs = [photo(64, seed=s) for s in range(3)] + [photo(80, seed=9)]
    dists = [noisy(r, 10 + 5 * i) for i, r in enumerate(refs)]
    names = ["psnr", "lpips_alex", "dists"]
    batched = metrics.compute_batch(refs, dists, names, batch_size=2, progress=False)
    single = [metrics.compute(r, d, names) for r, d in zip(refs, dists, strict=True)]
    for b, s in zip(batched, single, strict=True):
        assert b == pytest.approx(s, rel=1e-4, abs=1e-5)
    with pytest.raises(metrics.MetricInputError, match="3 references"):
        metrics.compute_batch(refs[:3], dists, names)
