"""CLIP metrics: real loader reports unavailable offline; a tiny random CLIP proves the plumbing."""

from __future__ import annotations

import numpy as np
import pytest

import metrics
from tests.metrics_helpers import noisy, photo, tiny_clip_scorer


@pytest.fixture
def tiny_clip():
    metrics.configure()
    metrics.set_model("clip", tiny_clip_scorer())
    yield
    metrics.configure()


def test_real_clip_unavailable_offline_with_reason():
    metrics.configure(clip_model="ViT-B-16", clip_pretrained="openai")
    try:
        ok, reason = metrics.available(["clip_i"])["clip_i"]
        assert not ok and "ViT-B-16" in reason and "openai" in reason
        with pytest.raises(metrics.MetricUnavailableError):
            metrics.compute(photo(), photo(), ["clip_i"])
    finally:
        metrics.configure()


def test_clip_metrics_plumbing_with_a_tiny_random_model(tiny_clip):
    img = photo(64)
    ok, label = metrics.available(["clip_i"])["clip_i"]
    assert ok and "random" in label
    same = metrics.compute(img, img.copy(), ["clip_i"])
    assert same["clip_i"] == pytest.approx(1.0, abs=1e-5)
    values = metrics.compute(img, noisy(img, 30), ["clip_i", "clip_t"], text="an astronaut in a white suit")
    assert -1.0 <= values["clip_i"] <= 1.0
    assert 0.0 <= values["clip_t"] <= 100.0
    with pytest.raises(metrics.MetricInputError, match="caption"):
        metrics.compute(img, img, ["clip_t"])
    # CLIP-T is a no-reference score: it needs only the image and the caption.
    assert "clip_t" in metrics.compute(None, img, ["clip_t"], text="a photo")


def test_fd_clip_with_a_tiny_random_model(tiny_clip):
    refs = [photo(48, seed=s) for s in range(4)]
    same = metrics.compute_set(refs, [r.copy() for r in refs], ["fd_clip"], progress=False)["fd_clip"]
    other = metrics.compute_set(refs, [noisy(r, 80) for r in refs], ["fd_clip"], progress=False)["fd_clip"]
    assert same == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(other) and other > same
