"""Decode real .misc files made by codec.pipeline.encode: every decoder, end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from codec import pipeline
from codec.decode import BicubicDecoder
from codec.decode.diffusion import DiffusionConfig, DiffusionDecoder
from codec.decode.sd_pipeline import MapGuidedControlNetPipeline
from codec.decode.tiny import tiny_components
from codec.records import Description, Item

KODAK = "/work/shared/data/kodak24/kodim23.png"


@pytest.fixture(scope="module")
def misc_file() -> tuple[Image.Image, bytes]:
    img = Image.open(KODAK).convert("RGB").crop((60, 40, 380, 280))  # 320x240
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    desc = Description(
        [Item("parrot", "green feathers, orange beak"), Item("parrot", "red and blue")],
        "two parrots side by side",
    )
    enc = pipeline.encode(img, 0.05, description=desc, maps=[left, ~left], decoder_hint="restore", seed=42)
    return img, enc.data


def test_file_carries_all_layers(misc_file):
    _, data = misc_file
    layers = pipeline.read_layers(data)
    assert layers.seed == 42 and layers.description is not None and len(layers.maps) == 2
    assert layers.lowres.width < layers.width


@pytest.mark.parametrize("name", ["bicubic", "restore"])
def test_decode_a_real_file(misc_file, name):
    img, data = misc_file
    r = pipeline.decode(data, decoder=name)
    assert r.image.size == img.size and r.image.mode == "RGB"
    assert r.decoder.startswith(name) and r.metadata["decoder_reason"] == "requested"
    mse = np.mean((np.asarray(r.image, float) - np.asarray(img, float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 18  # the same picture


def test_decode_a_real_file_with_tiny_diffusion(misc_file):
    """Tiny RANDOM weights: checks that the file's text, maps and seed reach the decoder."""
    img, data = misc_file
    dec = DiffusionDecoder(
        MapGuidedControlNetPipeline(**tiny_components()),
        DiffusionConfig(steps=2),
        models=("tiny-random-weights",),
    )
    a = pipeline.decode(data, decoder=dec)
    b = pipeline.decode(data, decoder=dec)
    assert a.image.size == img.size and a.metadata["mode"] == "regional" and a.metadata["seed"] == 42
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_bicubic_equals_plain_resize_of_pixel_layer(misc_file):
    _, data = misc_file
    layers = pipeline.read_layers(data)
    r = BicubicDecoder().decode(layers)
    assert np.array_equal(
        np.asarray(r.image), np.asarray(layers.lowres.resize(r.image.size, Image.Resampling.BICUBIC))
    )
