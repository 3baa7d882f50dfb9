"""The x4-upscaler decoder with tiny RANDOM-weight components (plumbing, not quality).

The components have the real upscaler's shapes where they matter (7-channel UNet input,
noise level as class label, a ×4 VAE, v-prediction); no weights exist offline.
"""

from __future__ import annotations

import numpy as np
import pytest
from codec_helpers import kodak_crop
from PIL import Image

from codec import pipeline
from codec.decode import available_decoders, get_decoder
from codec.decode.tiny import RANDOM_LABEL, tiny_upscaler_components
from codec.decode.upscale import UpscaleConfig, UpscaleDecoder, lowres_size, upscaler_prompt
from codec.describe import get_describer
from codec.errors import ModelUnavailableError
from codec.records import Description, Item

TEXT = "door: a red wooden door\nwall: white bricks\n\nThe front of a house with a red door."


@pytest.fixture(scope="module")
def decoder() -> UpscaleDecoder:
    return UpscaleDecoder.from_components(tiny_upscaler_components(), f"tiny-upscaler ({RANDOM_LABEL})", steps=3)


@pytest.fixture(scope="module")
def misc_file() -> bytes:
    desc = get_describer("manual", text=TEXT).describe()
    return pipeline.encode(kodak_crop(5, (150, 100)), 0.08, description=desc).data


def test_real_file_decodes_to_original_size_with_progress(decoder, misc_file):
    seen: list[tuple[float, str]] = []
    r = pipeline.decode(misc_file, decoder=decoder, progress=lambda f, m: seen.append((f, m)))
    assert r.image.size == (150, 100) and r.image.mode == "RGB"
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("step" in m for _, m in seen) == 3  # one report per denoising step
    md = r.metadata
    assert md["prompt"] == "The front of a house with a red door, door, a red wooden door, wall, white bricks"
    assert "item maps" in md["ignores"] and "random" in md["weights"]
    assert md["input_size"] == [38, 26]  # ¼ of 150×100, rounded up to the tiny UNet's multiple of 2
    assert r.decoder.startswith("upscale/")


def test_same_file_same_picture_and_the_seed_matters(decoder, misc_file):
    a = pipeline.decode(misc_file, decoder=decoder).image
    b = pipeline.decode(misc_file, decoder=decoder).image
    assert np.array_equal(np.asarray(a), np.asarray(b))
    layers = pipeline.read_layers(misc_file)
    layers.seed += 1
    c = decoder.decode(layers).image
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_colour_fix_keeps_the_pixel_layer_colours(decoder, misc_file):
    """Random weights give noise; the wavelet fix puts the pixel layer's low frequencies back,
    so at coarse scale the picture agrees with the bicubic decode of the same file."""
    fixed = pipeline.decode(misc_file, decoder=decoder).image
    base = pipeline.decode(misc_file, decoder="bicubic").image
    raw = UpscaleDecoder(decoder.pipeline, UpscaleConfig(steps=3, color_fix="none")).decode(
        pipeline.read_layers(misc_file)
    )

    def coarse(im: Image.Image) -> np.ndarray:
        return np.asarray(im.resize((3, 2), Image.Resampling.BOX), dtype=float)

    err_fixed = np.abs(coarse(fixed) - coarse(base)).mean()
    err_raw = np.abs(coarse(raw.image) - coarse(base)).mean()
    assert err_fixed < 6 and err_fixed < err_raw / 2, (err_fixed, err_raw)


def test_grayscale_source_gives_one_channel(decoder):
    gray = kodak_crop(2, (96, 64)).convert("L")
    data = pipeline.encode(gray, 0.1).data
    r = pipeline.decode(data, decoder=decoder)
    assert r.image.mode == "L" and r.image.size == (96, 64)


def test_prompt_and_sizes():
    d = Description([Item("cat", "grey tabby"), Item("sofa")], "A cat on a sofa.")
    assert upscaler_prompt(d) == "A cat on a sofa, cat, grey tabby, sofa"
    assert upscaler_prompt(Description([Item("cat")])) == "cat"
    assert upscaler_prompt(Description()) == ""
    assert lowres_size(512, 512, 8, 2048) == (128, 128)
    assert lowres_size(500, 333, 8, 2048) == (128, 88)  # rounded up to multiples of 8
    assert lowres_size(4000, 3000, 8, 2048) == (512, 384)  # capped at 2048 output
    assert lowres_size(20, 10, 8, 2048) == (8, 8)
    with pytest.raises(ValueError, match="noise_level"):
        UpscaleConfig(noise_level=351)
    with pytest.raises(ValueError, match="steps"):
        UpscaleConfig(steps=0)


def test_missing_weights_name_the_model_and_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MISC_UPSCALER_MODEL", raising=False)
    ok, why = available_decoders()["upscale"]
    assert not ok and "stabilityai/stable-diffusion-x4-upscaler" in why and "MISC_UPSCALER_MODEL" in why
    with pytest.raises(ModelUnavailableError) as err:
        get_decoder("upscale")
    msg = str(err.value)
    assert "stabilityai/stable-diffusion-x4-upscaler" in msg and "MISC_UPSCALER_MODEL" in msg and "cache" in msg
    with pytest.raises(ModelUnavailableError, match="nowhere.*local directory.*diffusers layout"):
        get_decoder("upscale", model=str(tmp_path / "nowhere"))


def test_real_loading_path_from_a_local_dir(tmp_path, monkeypatch, misc_file):
    """Save the tiny pipeline in diffusers' layout and load it the way real weights load."""
    from diffusers import StableDiffusionUpscalePipeline

    StableDiffusionUpscalePipeline(**tiny_upscaler_components(seed=2), max_noise_level=350).save_pretrained(
        tmp_path / "up"
    )
    monkeypatch.setenv("MISC_UPSCALER_MODEL", str(tmp_path / "up"))
    assert available_decoders()["upscale"][0]
    dec = get_decoder("upscale", steps=2, noise_level=100)
    assert isinstance(dec, UpscaleDecoder) and dec.reason == "requested" and dec.config.noise_level == 100
    r = pipeline.decode(misc_file, decoder=dec)
    assert r.image.size == (150, 100) and r.metadata["model"] == str(tmp_path / "up")
    # auto never picks it: it stays an alternative to choose by name
    assert not get_decoder("auto").name.startswith("upscale")
