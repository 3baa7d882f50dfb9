"""The Demo tab in headless Chromium: example → description + painted cells → Encode →
bit budget → Decode → reconstruction, comparison table. Offline backends only.

Screenshots: test-output/demo_encoded.png, test-output/demo_decoded.png. The click-to-result
times of the 512×512 example are written to test-output/demo_timing.json.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest

CHROMIUM = "/usr/bin/chromium"
OUT = Path(__file__).resolve().parents[1] / "test-output"
DESCRIPTION = ("astronaut: woman in an orange space suit\nflag: stars and stripes behind her\n\n"
               "Portrait of a smiling astronaut holding a helmet, an American flag behind her.")

IMAGES_LOADED = "() => [...document.images].every(i => i.complete)"  # before a screenshot: no half-drawn picture
# Error toasts (a server-side fault outside the handlers, e.g. a Radio value refused by Gradio's
# preprocess) vanish after a few seconds: the page records each one as it appears.
RECORD_ERROR_TOASTS = """
window.__errorToasts = [];
new MutationObserver(() => {
  for (const t of document.querySelectorAll('.toast-body.error')) {
    if (!t.dataset.seen) { t.dataset.seen = '1'; window.__errorToasts.push(t.innerText); }
  }
}).observe(document, {childList: true, subtree: true});
"""
# The centre pixel of each 8×8 cell of the map picture (null until it is loaded).
MAP_CELLS = """() => {
  const img = document.querySelector('#demo-maps img');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const w = img.naturalWidth, h = img.naturalHeight, canvas = document.createElement('canvas');
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, w, h).data, out = [];
  for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) {
    const i = 4 * (Math.floor((r + 0.5) * h / 8) * w + Math.floor((c + 0.5) * w / 8));
    out.push([px[i], px[i + 1], px[i + 2]]);
  }
  return out;
}"""
# The cells whose centre differs from the picture before painting (the item's tint), [[row, col], ...].
PAINTED_CELLS = """(before) => {
  const now = (""" + MAP_CELLS + """)();
  if (!now) return null;
  const cells = [];
  now.forEach((p, i) => {
    const d = Math.abs(p[0] - before[i][0]) + Math.abs(p[1] - before[i][1]) + Math.abs(p[2] - before[i][2]);
    if (d > 20) cells.push([Math.floor(i / 8), i % 8]);
  });
  return cells;
}"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(900),  # a hung browser fails the test instead of the whole run
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def url(tmp_path: Path):  # noqa: ANN201
    import app
    from study.config import StudyConfig

    blocks = app.build_app(StudyConfig(db_url=str(tmp_path / "study.db"), stimuli_dir=tmp_path / "stim"))
    port = _free_port()
    blocks.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs("127.0.0.1", port))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        blocks.close()


def test_example_through_encode_and_decode(url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from codec import pipeline
    from codec.describe import get_describer
    from demo.examples import example_image

    small = example_image("chelsea").resize((128, 128))
    desc = get_describer("manual", text="cat: a grey tabby cat\n\nA cat looking up.").describe()
    misc = tmp_path / "chelsea.misc"
    misc.write_bytes(pipeline.encode(small, 0.05, description=desc).data)

    OUT.mkdir(exist_ok=True)
    timing: dict[str, float] = {}
    log = OUT / "demo_steps.log"
    log.write_text("")
    start = time.perf_counter()

    def step(name: str) -> None:
        """Where the test is, with the time: printed on failure, and left in test-output/."""
        line = f"{time.perf_counter() - start:7.1f}s {name}"
        print(line, flush=True)
        with log.open("a") as f:
            f.write(line + "\n")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                                          "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(RECORD_ERROR_TOASTS)
        page.on("console", lambda m: step(f"console {m.type}: {m.text[:200]}") if m.type in ("error", "warning") else None)
        step("open the app")
        page.goto(url)
        expect(page.locator("#demo-encode")).to_be_visible(timeout=60000)
        # The status panel says what runs here and what does not.
        step("status panel")
        page.get_by_text("Backends: which are active").click()
        expect(page.locator("#demo-status")).to_contain_text("decoder restore", timeout=20000)
        expect(page.locator("#demo-status")).to_contain_text("MISC_SD_MODEL")

        # Encoding with no image gives a readable message, not a traceback.
        step("encode with no image")
        message = page.locator("#demo-message")
        page.locator("#demo-encode").click()
        expect(message).to_contain_text("Pick an example or upload an image first.", timeout=20000)

        # A text file renamed .png: a message says why, no Error badge on any box; Encode repeats it.
        step("upload a text file named .png")
        fake = tmp_path / "notes.png"
        fake.write_text("my shopping list, not a picture\n")
        page.locator("#demo-input input[type=file]").set_input_files(str(fake))
        expect(message).to_contain_text("not an image the demo can read", timeout=60000)
        expect(page.locator("#demo-input img")).to_have_count(0, timeout=20000)  # the broken picture is gone
        page.locator("#demo-encode").click()
        expect(message).to_contain_text("The last upload was not taken", timeout=20000)
        assert page.locator("[data-testid=status-tracker] span.error:visible").count() == 0, "an Error badge"
        step("screenshot refused upload")
        page.screenshot(path=str(OUT / "demo_refused_upload.png"), full_page=False)

        # A picture above the demo's limit: the limit in pixels, and an offer to downscale it.
        step("upload a picture above the limit")
        big = tmp_path / "big.png"
        example_image("coffee").resize((2000, 1300)).save(big)
        page.locator("#demo-input input[type=file]").set_input_files(str(big))
        expect(message).to_contain_text("2000×1300 = 2,600,000 pixels", timeout=60000)
        expect(message).not_to_contain_text("MISC_MAX_PIXELS")
        step("screenshot downscale offer")
        page.screenshot(path=str(OUT / "demo_downscale_offer.png"), full_page=False)
        page.locator("#demo-downscale").click()
        expect(message).to_contain_text("Downscaled from 2000×1300 to 1270×825", timeout=60000)
        expect(page.locator("#demo-input img")).to_be_visible(timeout=20000)
        expect(page.locator("#demo-downscale")).to_be_hidden()

        # The astronaut example (512×512), a description typed by hand.
        step("pick the example")
        page.locator("#demo-examples .gallery-item").first.click()
        expect(page.locator("#demo-input img")).to_be_visible(timeout=20000)
        step("type the description")
        page.locator("#demo-text textarea").fill(DESCRIPTION)
        expect(page.locator("#demo-item")).to_contain_text("flag", timeout=20000)
        expect(page.locator("#demo-item input[type=radio]").first).to_be_checked(timeout=20000)
        expect(message).to_contain_text("Image 512×512", timeout=20000)
        # Paint the first item's map: click three cells on the map picture, in quick succession
        # (each click is an event that repaints the picture; none may be lost or undo another).
        step("paint map cells")
        maps = page.locator("#demo-maps img")
        expect(maps).to_be_visible(timeout=20000)
        page.wait_for_function(f"() => ({MAP_CELLS})() !== null", timeout=20000)
        before = page.evaluate(MAP_CELLS)
        box = maps.bounding_box()
        assert box is not None
        for fx, fy in ((0.3, 0.6), (0.45, 0.6), (0.45, 0.8)):
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        cells = [[4, 2], [4, 3], [6, 3]]  # rows and columns of the three clicks on the 8×8 grid
        try:
            page.wait_for_function(f"(b) => JSON.stringify(({PAINTED_CELLS})(b)) === '{json.dumps(cells, separators=(',', ':'))}'",
                                   arg=before, timeout=20000)
        except Exception:
            raise AssertionError(f"painted cells: {page.evaluate(PAINTED_CELLS, before)}, expected {cells}") from None

        t0 = time.perf_counter()
        step("encode")
        page.locator("#demo-encode").click()
        expect(page.locator("#demo-budget img")).to_be_visible(timeout=180000)
        expect(page.locator("#demo-encode-info")).to_contain_text("bytes", timeout=30000)
        timing["encode_click_to_result_s"] = time.perf_counter() - t0
        info = page.locator("#demo-encode-info").inner_text()
        assert "Item maps in the file: yes" in info, info
        assert "astronaut" in info
        expect(page.locator("#demo-file")).to_contain_text(".misc")
        href = page.locator("#demo-file a").first.get_attribute("href")
        assert href, "no link to the .misc file"
        layers = pipeline.read_layers(page.request.get(urljoin(page.url, href)).body())
        assert [it.name for it in layers.description.items] == ["astronaut", "flag"]
        assert layers.maps[0].nonzero()[0].tolist() == [r for r, _ in cells]  # the file has the three cells
        assert layers.maps[0].nonzero()[1].tolist() == [c for _, c in cells] and not layers.maps[1].any()
        page.wait_for_function(IMAGES_LOADED, timeout=30000)
        step("screenshot encoded")
        page.screenshot(path=str(OUT / "demo_encoded.png"), full_page=True)

        t0 = time.perf_counter()
        step("decode")
        page.locator("#demo-decode").click()
        expect(page.locator("#demo-slider img").first).to_be_visible(timeout=180000)
        expect(page.locator("#demo-decode-info")).to_contain_text("Decoded", timeout=30000)
        timing["decode_click_to_reconstruction_s"] = time.perf_counter() - t0
        # Wait on a table cell: the progress overlay over the table also says "WEBP at N bytes"
        # and names the metrics while the comparison is still running.
        step("wait for the comparison")
        grid = page.locator("#demo-metrics").get_by_role("grid")
        # The comparison arrives row by row: MISC's rows first, each codec's as it finishes.
        expect(grid.get_by_role("gridcell", name="MISC pixel layer, bicubic", exact=True)).to_be_visible(
            timeout=300000
        )
        expect(grid.get_by_role("gridcell", name="WEBP", exact=True)).to_be_visible(timeout=300000)
        expect(grid.get_by_role("gridcell", name="AVIF", exact=True)).to_be_visible(timeout=300000)
        expect(page.locator("#demo-avif")).not_to_contain_text("at the same file size", timeout=300000)
        timing["decode_click_to_comparison_s"] = time.perf_counter() - t0
        table = grid.inner_text()
        for word in ("MISC", "JPEG", "PSNR", "LPIPS", "DISTS"):
            assert word in table, table
        expect(page.locator("#demo-pixel img")).to_be_visible()
        page.wait_for_function(IMAGES_LOADED, timeout=30000)
        step("screenshot decoded")
        page.screenshot(path=str(OUT / "demo_decoded.png"), full_page=True)

        # Encoding again (a longer description): what was cut is said, the old decode is cleared.
        step("encode again")
        page.locator("#demo-text textarea").fill(
            DESCRIPTION.replace("behind her", "behind her waving in a light breeze over the launch pad today")
        )
        page.locator("#demo-encode").click()
        expect(message).to_contain_text("cut to the limits", timeout=180000)
        expect(message).to_contain_text("cut from 15 to 10 words")
        expect(page.locator("#demo-decode-info")).to_contain_text("A new file was encoded", timeout=30000)
        expect(page.locator("#demo-slider img")).to_have_count(0)
        expect(grid.get_by_role("gridcell", name="WEBP", exact=True)).to_have_count(0)
        expect(page.locator("#demo-webp img")).to_have_count(0)
        step("screenshot re-encoded")
        page.screenshot(path=str(OUT / "demo_reencoded.png"), full_page=True)

        # A .misc file from elsewhere (the CLI, a colleague) decodes too, with its description.
        step("upload a .misc file")
        page.get_by_text("Decode a .misc file of your own").click()
        page.locator("#demo-upload input[type=file]").set_input_files(str(misc))
        page.locator("#demo-decode-upload").click()
        expect(page.locator("#demo-decode-info")).to_contain_text("(128×128", timeout=120000)
        expect(page.locator("#demo-decode-info")).to_contain_text("a grey tabby cat")
        expect(page.locator("#demo-encode-info")).to_contain_text("Uploaded file: ")
        expect(page.locator("#demo-maps img")).to_be_visible()
        # No original here: the slider compares with the pixel layer, the codecs' boxes are reset.
        expect(page.locator("#demo-slider")).to_contain_text("Pixel layer (bicubic)")
        expect(page.locator("#demo-slider")).not_to_contain_text("Original")
        expect(page.locator("#demo-webp")).to_contain_text("WEBP at the same file size")
        expect(page.locator("#demo-text textarea")).to_have_value("cat: a grey tabby cat\n\nA cat looking up.")
        expect(page.locator("#demo-item")).to_contain_text("cat")
        expect(message).not_to_contain_text("Encoded")  # the earlier encode's message is gone with its file
        step("screenshot uploaded")
        page.screenshot(path=str(OUT / "demo_uploaded.png"), full_page=True)
        assert page.evaluate("window.__errorToasts") == [], "error toasts appeared"
        browser.close()
    (OUT / "demo_timing.json").write_text(json.dumps(timing, indent=2))
    assert (OUT / "demo_decoded.png").stat().st_size > 50_000
