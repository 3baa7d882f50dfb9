"""The Demo tab's AIGI panel: the recipe shown, prompt-aware encoding, decoding by regeneration.

Tiny RANDOM-WEIGHT generator (its pictures are noise, not AIGIs): the plumbing only.
Screenshot: test-output/demo_aigi.png.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from codec import pipeline
from codec.aigi import make_recipe, read_recipe
from codec.aigi.tiny import TINY_MODEL, save_tiny_txt2img
from codec.aigi.write import png_with_recipe
from codec.decode.regen import ENV, generate, load_pipeline
from demo import aigi_panel
from tests.aigi_helpers import image, png_with_chunks, text_chunk

CHROMIUM = "/usr/bin/chromium"
OUT = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture(scope="module")
def aigi_png(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("demo-aigi")
    weights = save_tiny_txt2img(root / "weights", seed=0)
    recipe = make_recipe(
        "a1111", prompt="a lighthouse at dusk, <lora:coast:0.7>, (fog:1.2)", negative_prompt="blurry", seed=7,
        steps=2, sampler="Euler a", cfg_scale=6, width=256, height=256, model=TINY_MODEL,
    )  # fmt: skip
    picture, _ = generate(load_pipeline(str(weights)), recipe)
    path = root / "lighthouse.png"
    path.write_bytes(png_with_recipe(picture, recipe))
    regen_map = root / "regen.json"
    regen_map.write_text(json.dumps({TINY_MODEL: str(weights)}))
    return path, regen_map


def test_recipe_markdown_says_what_the_metadata_says(aigi_png, monkeypatch) -> None:
    path, regen_map = aigi_png
    monkeypatch.delenv(ENV, raising=False)
    md = aigi_panel.recipe_markdown(read_recipe(path))
    assert "AI-generated image with a recipe (a1111)" in md
    assert "&lt;lora:coast:0.7&gt;" in md  # shown, not swallowed as an HTML tag
    assert "| seed | 7 |" in md and "no weights are mapped" in md
    monkeypatch.setenv(ENV, str(regen_map))
    assert "decoding tries it first" in aigi_panel.recipe_markdown(read_recipe(path))
    plain = aigi_panel.recipe_markdown(read_recipe(png_with_chunks(text_chunk("prompt", "{broken"))))
    assert "not an AI-generated image" in plain and "not valid JSON" in plain


def test_decode_regenerates_or_falls_back_and_says_so(aigi_png, monkeypatch) -> None:
    from demo.backends import Backends

    path, regen_map = aigi_png
    data = pipeline.encode(read_recipe(path).recipe and __import__("PIL.Image").Image.open(path), 0.1,
                           recipe=read_recipe(path).recipe, decoder_hint="bicubic").data  # fmt: skip
    monkeypatch.setenv(ENV, str(regen_map))
    out = aigi_panel.decode(data, "bicubic", Backends(), lambda f, m: None)
    assert out.decoder == "regen/weights" and "**Regenerated**" in aigi_panel.decode_note(out.metadata)
    assert "Random weights" in aigi_panel.decode_note(out.metadata)
    monkeypatch.delenv(ENV)
    out = aigi_panel.decode(data, "bicubic", Backends(), lambda f, m: None)
    assert out.decoder == "bicubic" and "Regeneration not used" in aigi_panel.decode_note(out.metadata)
    natural = pipeline.encode(image((64, 64)), 0.3, decoder_hint="bicubic").data
    assert (
        aigi_panel.decode_note(aigi_panel.decode(natural, "bicubic", Backends(), lambda f, m: None).metadata)
        == ""
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
@pytest.mark.timeout(600)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")
def test_prompt_aware_encode_takes_the_realism_knob(aigi_png) -> None:
    from PIL import Image

    from demo import session

    path, _ = aigi_png
    recipe = read_recipe(path.read_bytes()).recipe
    with Image.open(path) as im:
        picture = im.convert("RGB")
    looped = session.encode(picture, 0.05, None, None, "restore", realism=0.0, recipe=recipe)
    plain = session.encode(picture, 0.05, None, None, "restore", recipe=recipe)
    for enc in (looped, plain):
        assert set(enc.info["sections"]) >= {"recipe", "text"}
        assert enc.result.description.overall == "a lighthouse at dusk, <lora:coast:0.7>, (fog:1.2)"
    assert looped.result.loop is not None and looped.result.loop.realism == 0.0
    assert pipeline.read_layers(looped.result.data).detail == looped.result.loop.alpha
    assert plain.result.loop is None and pipeline.read_layers(plain.result.data).detail is None


def test_panel_in_the_browser(aigi_png, tmp_path, monkeypatch) -> None:
    from playwright.sync_api import expect, sync_playwright

    import app
    from study.config import StudyConfig

    path, regen_map = aigi_png
    monkeypatch.setenv(ENV, str(regen_map))
    blocks = app.build_app(StudyConfig(db_url=str(tmp_path / "study.db"), stimuli_dir=tmp_path / "stim"))
    port = _free_port()
    blocks.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs("127.0.0.1", port))
    OUT.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                                              "--disable-background-networking", "--disable-component-update"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.locator("#demo-encode")).to_be_visible(timeout=60000)
            page.get_by_text("AI-generated image: read its recipe").click()
            page.locator("#demo-aigi-file input[type=file]").set_input_files(str(path))
            recipe = page.locator("#demo-aigi-recipe")
            expect(recipe).to_contain_text("AI-generated image with a recipe", timeout=30000)
            expect(recipe).to_contain_text("<lora:coast:0.7>")
            expect(recipe).to_contain_text("decoding tries it first")
            expect(page.locator("#demo-input img")).to_be_visible(timeout=20000)
            bpp = page.locator("#demo-bpp input[type=number]")
            bpp.fill("0.05")  # 409 bytes at 256x256 (the slider stops at 0.05)
            bpp.press("Enter")
            page.locator("#demo-aigi-encode").click()
            expect(page.locator("#demo-encode-info")).to_contain_text(
                re.compile(r"the recipe [1-9]\d* B"), timeout=120000
            )
            # the tab's fidelity ↔ realism slider (default R = 0) applies to the recipe's encode too
            expect(page.locator("#demo-encode-info")).to_contain_text("Fidelity ↔ realism: R = 0, detail level")
            # Gradio's pictures load lazily: the budget picture sits ~1250 px above this panel (more with the
            # realism slider in the left column), beyond Chromium's lazy-load margin, so it stays unloaded
            # (0×0, "hidden") until scrolled to, as a visitor does to look at it.
            page.locator("#demo-budget").scroll_into_view_if_needed()
            expect(page.locator("#demo-budget img")).to_be_visible()
            page.wait_for_function("() => document.querySelector('#demo-budget img').naturalWidth > 0")
            expect(page.locator("#demo-text textarea")).to_have_value(
                "a lighthouse at dusk, <lora:coast:0.7>, (fog:1.2)"
            )
            page.locator("#demo-decode").click()
            expect(page.locator("#demo-decode-info")).to_contain_text("Regenerated", timeout=180000)
            # the comparison with classical codecs follows the decode: wait for its last row and its
            # message to clear (a job left running in a worker thread would still be computing when
            # the test process exits)
            grid = page.locator("#demo-metrics").get_by_role("grid")
            expect(grid.get_by_role("gridcell", name="AVIF", exact=True)).to_be_visible(timeout=300000)
            expect(page.locator("#demo-decode-message")).to_have_text("", timeout=120000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(OUT / "demo_aigi.png"), full_page=True)
            browser.close()
    finally:
        blocks.close()
