"""Prompt-aware coding and regeneration with tiny RANDOM-WEIGHT pipelines (plumbing, not quality).

A 128x128 picture from a tiny random text-to-image pipeline (structured noise, not an AIGI),
A1111-style metadata written and read back, encoded with its recipe, decoded by regenerating
it from a local diffusers folder (the real from_pretrained path), and by the fallback when
the weights differ. bench.aigi regen gives the same figures at 512x512.
"""

from __future__ import annotations

import json

import pytest

from codec import bitstream as bs
from codec import pipeline
from codec.aigi import make_recipe, read_recipe
from codec.aigi.section import pack_recipe, unpack_recipe
from codec.aigi.tiny import TINY_MODEL, save_tiny_txt2img
from codec.aigi.write import png_with_recipe
from codec.decode.regen import ENV, ModelMap, RegenConfig, generate, load_pipeline, scheduler_for
from codec.errors import BitstreamError
from codec.pixel import psnr
from codec.records import Description, Item
from codec.textcoder import MODEL_NAME, PROMPT_MODEL
from tests.aigi_helpers import RECIPE

SIZE = 128


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    """Two tiny pipelines in diffusers layout: 'a' made the picture, 'b' has other weights."""
    root = tmp_path_factory.mktemp("generators")
    return {k: str(save_tiny_txt2img(root / k, seed)) for k, seed in (("a", 0), ("b", 1))}


@pytest.fixture(scope="module")
def aigi(generators):
    """(png bytes with A1111 metadata, the picture, its recipe) made by generator 'a'."""
    recipe = make_recipe(
        "a1111", prompt="a lighthouse on a cliff at dusk, (volumetric fog:1.2), <lora:coast:0.7>",
        negative_prompt="blurry, lowres", seed=20261202, steps=3, sampler="Euler a", cfg_scale=6.5,
        width=SIZE, height=SIZE, model=TINY_MODEL,
    )  # fmt: skip
    image, _ = generate(load_pipeline(generators["a"]), recipe)
    return png_with_recipe(image, recipe), image, recipe


@pytest.fixture(scope="module")
def encoded(aigi) -> bytes:
    """The picture coded prompt-aware from the recipe read back out of its PNG."""
    data, image, _ = aigi
    return pipeline.encode(image, 0.08, recipe=read_recipe(data).recipe, decoder_hint="bicubic").data


def _config(path: str) -> RegenConfig:
    return RegenConfig(models=ModelMap({TINY_MODEL: path}))


def test_recipe_section_round_trips_in_tens_of_bytes() -> None:
    data = pack_recipe(RECIPE, check_db=27.3)
    assert len(data) <= 64  # 20 of them the model name, 15 the negative prompt
    back = unpack_recipe(data, prompt=RECIPE.prompt)
    assert back.check_db == 27.25 and back.prompt_in_text
    expected = make_recipe(**{**RECIPE.to_dict(), "extra": {}})
    assert back.recipe == expected  # extras (LoRA hashes, version) are not stored
    odd = make_recipe("comfyui", seed=2**64 - 1, cfg_scale=6.123, sampler="my sampler", model_hash="Not-Hex")
    assert unpack_recipe(pack_recipe(odd, prompt_in_text=False)).recipe == odd


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "RECIPE section is truncated"),
        (b"\xff\x7f", "above the limit 4095"),
        (b"\x02\x07", "field 'source' is 7, above the limit 6"),
        (b"\x02\x01\x80", "RECIPE section is truncated"),
        (b"\x02\x01" + b"\xff" * 10 + b"\x01", "field 'seed' is longer than 10 bytes"),
        (b"\x80\x01\x01\x7f", "a field claims 127 bytes"),
        (b"\x80\x01\x01\x05\xff\xfe\xfd\xfc\xfb", "model name is not valid UTF-8"),
        (b"\x00\x01\x00", "1 trailing bytes"),
        (b"\x04\x01\x00", "steps is 0, outside 1..10000"),
    ],
)
def test_damaged_recipe_sections_are_refused(payload: bytes, message: str) -> None:
    with pytest.raises(BitstreamError, match=message):
        unpack_recipe(payload)


def test_prompt_becomes_the_paragraph_and_the_file_names_the_prompt_model(aigi) -> None:
    data, image, recipe = aigi
    read = read_recipe(data).recipe
    described = Description(items=[Item("lighthouse", "white tower")], overall="a VLM paragraph")
    enc = pipeline.encode(image, 0.08, recipe=read, description=described, decoder_hint="bicubic")
    f = bs.unpack(enc.data)
    assert PROMPT_MODEL in f.models and MODEL_NAME not in f.models
    assert f.section(bs.SectionType.RECIPE) is not None
    layers = pipeline.read_layers(enc.data)
    assert layers.description == Description(items=[Item("lighthouse", "white tower")], overall=recipe.prompt)
    assert layers.recipe.recipe.seed == recipe.seed and layers.recipe.check_db > 10
    assert "replaced by the generation prompt" in " ".join(enc.notes)
    assert pipeline.info(enc.data)["sections"]["recipe"]["bytes"] < 60


def test_regenerates_when_the_generator_loads_and_agrees(aigi, encoded, generators) -> None:
    _, image, _ = aigi
    res = pipeline.decode(encoded, decoder="bicubic", regen=_config(generators["a"]))
    regen = res.metadata["regeneration"]
    assert regen["path"] == "regenerated" and res.decoder == "regen/a"
    assert regen["scheduler"] == "EulerAncestralDiscreteScheduler"
    assert psnr(res.image, image) == float("inf")  # same weights, seed and CPU: bit-exact


def test_falls_back_when_the_weights_differ_or_are_missing(encoded, generators, monkeypatch) -> None:
    res = pipeline.decode(encoded, decoder="bicubic", regen=_config(generators["b"]))
    regen = res.metadata["regeneration"]
    assert (regen["path"], res.decoder) == ("fallback", "bicubic")
    assert regen["got_db"] < regen["check_db"] - regen["margin_db"]
    assert "another model version" in regen["reason"]
    monkeypatch.delenv(ENV, raising=False)
    res = pipeline.decode(encoded, decoder="bicubic")  # nothing maps the tiny model here
    assert res.metadata["regeneration"]["path"] == "fallback"
    assert "no weights are mapped" in res.metadata["regeneration"]["reason"]
    assert "regeneration" not in pipeline.decode(encoded, decoder="bicubic", regen=False).metadata


def test_falls_back_when_the_picture_was_resized_after_generation(aigi, generators) -> None:
    data, image, _ = aigi
    enc = pipeline.encode(
        image.resize((96, 96)), 0.12, recipe=read_recipe(data).recipe, decoder_hint="bicubic"
    )
    res = pipeline.decode(enc.data, decoder="bicubic", regen=_config(generators["a"]))
    assert res.metadata["regeneration"]["reason"] == "the image is 96x96, the recipe made 128x128"


def test_model_map_resolves_hashes_names_and_the_environment(monkeypatch, tmp_path) -> None:
    m = ModelMap({"abcdef0123": "/w/x", "MyModel": "/w/y"})
    assert m.resolve("other", "abcdef0123456789") == "/w/x"  # A1111 short hash of a long one
    assert m.resolve("models/Stable-diffusion/mymodel.safetensors", None) == "/w/y"
    assert m.resolve("unknown", None) is None
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"z": "/w/z"}))
    monkeypatch.setenv(ENV, str(path))
    env = ModelMap.from_env()
    assert env.resolve("z.ckpt", None) == "/w/z"
    assert (
        env.resolve("v1-5-pruned-emaonly.safetensors", None) == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    )


def test_sampler_names_map_to_diffusers_schedulers(generators) -> None:
    pipe = load_pipeline(generators["a"])
    assert scheduler_for(pipe, "DPM++ 2M Karras", None)[1] == "DPMSolverMultistepScheduler (Karras sigmas)"
    assert scheduler_for(pipe, "dpmpp_2m", "karras")[1] == "DPMSolverMultistepScheduler (Karras sigmas)"
    assert scheduler_for(pipe, "k_lms", None)[1] == "LMSDiscreteScheduler"
    assert "not mapped" in scheduler_for(pipe, "Restart", None)[1]


def test_cli_codes_an_aigi_prompt_aware_and_reports_the_decode_path(
    aigi, tmp_path, capsys, monkeypatch
) -> None:
    from codec.cli import main

    data, _, _ = aigi
    src = tmp_path / "aigi.png"
    src.write_bytes(data)
    monkeypatch.delenv(ENV, raising=False)
    assert (
        main(["encode", str(src), "-o", str(tmp_path / "a.misc"), "--bpp", "0.08", "--decoder", "bicubic"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["recipe"] == "a1111 recipe coded prompt-aware"
    assert main(["info", str(tmp_path / "a.misc")]) == 0
    assert "recipe" in json.loads(capsys.readouterr().out)["sections"]
    assert (
        main(["decode", str(tmp_path / "a.misc"), "-o", str(tmp_path / "a.png"), "--decoder", "bicubic"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["regeneration"]["path"] == "fallback"
    assert main(["encode", str(src), "-o", str(tmp_path / "b.misc"), "--bpp", "0.08", "--decoder", "bicubic",
                 "--recipe", "off"]) == 0  # fmt: skip
    assert "recipe" not in json.loads(capsys.readouterr().out)


def test_an_sdxl_shaped_pipeline_regenerates_through_the_same_path(tmp_path) -> None:
    """Tiny RANDOM-WEIGHT SDXL architecture (two text encoders, size conditioning)."""
    from diffusers import StableDiffusionXLPipeline

    from codec.decode.tiny import tiny_xl_components

    parts = tiny_xl_components(0)
    parts.pop("controlnet")
    StableDiffusionXLPipeline(**parts).save_pretrained(tmp_path / "xl")
    recipe = make_recipe("comfyui", prompt="a fox in the snow", negative_prompt="blurry", seed=3, steps=2,
                         sampler="dpmpp_2m", scheduler="karras", cfg_scale=5, width=64, height=64,
                         model="sd_xl_tiny.safetensors")  # fmt: skip
    picture, info = generate(load_pipeline(str(tmp_path / "xl")), recipe)
    assert info["scheduler"] == "DPMSolverMultistepScheduler (Karras sigmas)"
    enc = pipeline.encode(picture, 0.5, recipe=recipe, decoder_hint="bicubic")
    res = pipeline.decode(
        enc.data, decoder="bicubic", regen=RegenConfig(models=ModelMap({"sd_xl_tiny": str(tmp_path / "xl")}))
    )
    assert res.metadata["regeneration"]["path"] == "regenerated"
    assert psnr(res.image, picture) == float("inf")
