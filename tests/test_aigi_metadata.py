"""Reading generation metadata: every supported format, the 'no recipe' result, and refusals."""

from __future__ import annotations

import io
import json
import time
import zlib

import pytest

from codec.aigi import format_a1111, make_recipe, parse_a1111, read_recipe
from codec.aigi.containers import MAX_TEXT_BYTES
from codec.aigi.formats import parse_comfyui_prompt, split_settings
from codec.errors import RecipeError
from tests.aigi_helpers import (
    INVOKEAI,
    RECIPE,
    comfy_prompt_graph,
    image,
    itxt_chunk,
    png_chunk,
    png_with_chunks,
    sample_files,
    text_chunk,
)


@pytest.mark.parametrize("name", ["a1111-png", "a1111-jpeg", "a1111-webp"])
def test_a1111_recipe_round_trips_through_png_jpeg_and_webp(name: str) -> None:
    res = read_recipe(sample_files()[name])
    assert res.kind == "recipe" and res.is_aigi and not res.problems
    assert res.recipe == RECIPE
    assert res.recipe.is_complete()


def test_a1111_text_variants() -> None:
    old = parse_a1111(
        "portrait of a knight, oil painting\nSteps: 50, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, "
        'Size: 512x768, Model hash: abcdef12, Lora hashes: "a: 1, b: 2"'
    )
    assert (old.prompt, old.negative_prompt, old.sampler, old.scheduler) == (
        "portrait of a knight, oil painting",
        "",
        "DPM++ 2M Karras",
        None,
    )
    assert (old.width, old.height, old.seed, old.cfg_scale) == (512, 768, 42, 7.0)
    assert old.extra == {"Lora hashes": "a: 1, b: 2"}
    multi = parse_a1111("line one\nline two\nNegative prompt: bad\nworse\nSteps: 4, Seed: 1, CFG scale: 1.5")
    assert multi.prompt == "line one\nline two" and multi.negative_prompt == "bad\nworse"
    assert format_a1111(RECIPE).startswith(RECIPE.prompt)
    assert parse_a1111(format_a1111(RECIPE)) == RECIPE


def test_comfyui_api_graph_gives_prompt_settings_model_and_loras() -> None:
    res = read_recipe(sample_files()["comfyui-png"])
    r = res.recipe
    assert res.kind == "recipe" and r.source == "comfyui" and not res.problems
    assert r.prompt == "a lighthouse at dusk, (film grain:0.8)" and r.negative_prompt == "text, watermark"
    assert (r.seed, r.steps, r.cfg_scale, r.sampler, r.scheduler) == (8566257, 30, 6.5, "dpmpp_2m", "karras")
    assert (r.width, r.height, r.model) == (1024, 768, "sd_xl_base_1.0.safetensors")
    assert r.extra["Lora"] == "pixel.safetensors:0.7"


def test_comfyui_workflow_alone_is_read_too() -> None:
    r = read_recipe(sample_files()["comfyui-workflow-png"]).recipe
    assert r.source == "comfyui-workflow"
    assert (r.prompt, r.seed, r.steps, r.sampler, r.width, r.model) == (
        "a lighthouse at dusk, (film grain:0.8)", 8566257, 30, "dpmpp_2m", 1024, "sd_xl_base_1.0.safetensors")  # fmt: skip


def test_invokeai_novelai_and_legacy() -> None:
    files = sample_files()
    inv = read_recipe(files["invokeai-png"]).recipe
    assert (inv.source, inv.prompt, inv.model, inv.model_hash, inv.scheduler) == (
        "invokeai", INVOKEAI["positive_prompt"], "juggernaut-xl", "blake3:abcdef", "euler_a")  # fmt: skip
    old = read_recipe(files["invokeai2-png"]).recipe
    assert (old.prompt, old.negative_prompt, old.sampler) == ("a castle on a hill", "fog, people", "k_lms")
    nai = read_recipe(files["novelai-png"])
    assert nai.recipe.source == "novelai" and nai.recipe.negative_prompt == "lowres, bad anatomy"
    assert nai.recipe.model.startswith("NovelAI Diffusion V3")
    assert any("Software" in e for e in nai.evidence)


def test_ai_markers_without_a_recipe_and_plain_images() -> None:
    files = sample_files()
    xmp = read_recipe(files["xmp-jpeg"])
    assert (xmp.kind, xmp.recipe) == ("aigi", None)
    assert xmp.evidence == ["XMP IPTC DigitalSourceType trainedAlgorithmicMedia"]
    c2pa = read_recipe(files["c2pa-png"])
    assert c2pa.kind == "aigi" and "C2PA" in c2pa.evidence[0]
    for fmt in ("PNG", "JPEG", "WEBP"):
        buf = io.BytesIO()
        image().save(buf, format=fmt)
        plain = read_recipe(buf.getvalue())
        assert (plain.kind, plain.recipe, plain.evidence, plain.is_aigi) == ("none", None, [], False)
        assert "not an AI-generated image" in plain.summary()


def test_a_bad_entry_does_not_hide_a_good_one_unless_strict() -> None:
    data = png_with_chunks(text_chunk("prompt", "{not json"), text_chunk("parameters", format_a1111(RECIPE)))
    res = read_recipe(data)
    assert res.recipe == RECIPE
    assert res.problems == [
        "PNG 'prompt' (ComfyUI): ComfyUI prompt is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]
    with pytest.raises(RecipeError, match="not valid JSON"):
        read_recipe(data, strict=True)


def test_decompression_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib.compress(b"a" * (64 * 1024 * 1024), 9)  # 64 MiB of text in ~65 kB
    for chunk in (png_chunk(b"zTXt", b"parameters\x00\x00" + bomb),
                  png_chunk(b"iTXt", b"parameters\x00\x01\x00\x00\x00" + bomb)):  # fmt: skip
        t0 = time.process_time()
        with pytest.raises(RecipeError, match="decompression bomb"):
            read_recipe(png_with_chunks(chunk))
        assert time.process_time() - t0 < 5  # bounded work, not a timing benchmark: 64 MiB would take longer


@pytest.mark.parametrize(
    "data, message",
    [
        (b"GIF89a....", "not a PNG, JPEG or WebP"),
        (png_with_chunks(png_chunk(b"tEXt", b"k" * 80 + b"\x00v")), "keyword of 80 bytes"),
        (png_with_chunks(png_chunk(b"tEXt", b"x" * (MAX_TEXT_BYTES + 1))), "above the limit"),
        (png_with_chunks(itxt_chunk("parameters", "ok"))[:-30], "past the end of the file"),
        (b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\x00\x00", "past the end"),
    ],
)
def test_malformed_containers_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        read_recipe(data)


@pytest.mark.parametrize(
    "graph_patch, message",
    [
        (
            {"3": {"class_type": "KSampler", "inputs": {"seed": "abc", "positive": ["6", 0]}}},
            "seed must be an integer",
        ),
        ({"3": {"class_type": "KSampler", "inputs": {"steps": -3}}}, "steps is -3, outside 1..10000"),
        (
            {"3": {"class_type": "KSampler", "inputs": {"cfg": True}}},
            "CFG scale must be a number, got a boolean",
        ),
        (
            {"3": {"class_type": "KSampler", "inputs": {"positive": ["99", 0]}}},
            "node 99, which does not exist",
        ),
        ({"3": {"class_type": "KSampler", "inputs": {"positive": "6"}}}, "must be a link"),
        ({"3": {"class_type": 5}}, "class_type must be text"),
        (
            {"6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["6", 0]}}},
            "linked through more than 16",
        ),
        ({"3": {"class_type": "VAEDecode", "inputs": {}}}, "no KSampler node"),
    ],
)
def test_comfyui_wrong_types_and_broken_links(graph_patch: dict, message: str) -> None:
    g = comfy_prompt_graph()
    g.update(graph_patch)
    with pytest.raises(RecipeError, match=message):
        parse_comfyui_prompt(json.dumps(g))


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"3": {"class_type": "KSampler", "inputs": {"seed": NaN}}}', "NaN is not allowed"),
        ('{"3": {"class_type": "KSampler", "inputs": {"seed": ' + "9" * 5000 + "}}}", "not valid JSON"),
        (
            '{"3": {"class_type": "KSampler", "inputs": {"seed": ' + "9" * 30 + "}}}",
            "outside 0..18446744073709551615",
        ),
        ("[]", "must be a JSON object"),
        ("x" * 300_000, "above the limit 262144"),
    ],
)
def test_hostile_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        parse_comfyui_prompt(text)


def test_a1111_refusals() -> None:
    long = read_recipe(
        png_with_chunks(text_chunk("parameters", "x" * 30_000 + "\nSteps: 1, Seed: 1, CFG scale: 1"))
    )
    assert long.kind == "none" and "above the limit 24000" in long.problems[0]
    with pytest.raises(RecipeError, match="Size must be WIDTHxHEIGHT"):
        parse_a1111("p\nSteps: 1, Size: 512, Seed: 1")
    with pytest.raises(RecipeError, match="appears twice"):
        parse_a1111("p\nSteps: 1, Seed: 1, Seed: 2")
    with pytest.raises(RecipeError, match="settings line .* is malformed"):
        parse_a1111("p\nSteps: 1 and some prose, without keys")
    with pytest.raises(RecipeError, match="not generation parameters"):
        parse_a1111("just a caption somebody wrote")
    with pytest.raises(RecipeError, match="width is 0"):
        parse_a1111("p\nSteps: 1, Seed: 1, Size: 0x512")
    with pytest.raises(RecipeError, match="settings line has 9000 characters"):
        split_settings("a" * 9000)
    assert split_settings('A: "x, \\"y\\"", B: 2') == [("A", 'x, "y"'), ("B", "2")]


def test_make_recipe_checks_every_field() -> None:
    with pytest.raises(RecipeError, match="prompt has 9000 characters"):
        make_recipe("t", prompt="x" * 9000)
    with pytest.raises(RecipeError, match="CFG scale is inf"):
        make_recipe("t", cfg_scale=float("inf"))
    with pytest.raises(RecipeError, match="sampler must be text, got list"):
        make_recipe("t", sampler=["a"])
    assert make_recipe("t", seed="12", steps=3.0, width="64", height=64).seed == 12
