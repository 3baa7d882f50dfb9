"""The demo's plain steps (demo/session.py) without a server: upload checks, what the limits
cut, text made safe for JSON and Markdown, and the comparison that arrives row by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from codec import pipeline
from codec.errors import ImageInputError
from demo import session


def test_header_checks_need_no_decode(tmp_path: Path) -> None:
    text = tmp_path / "text.png"
    text.write_text("not a picture")
    with pytest.raises(ImageInputError, match="not an image"):
        session.load_upload(text)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (4, 40)).save(tiny)
    with pytest.raises(ImageInputError, match="at least 8 pixels"):
        session.load_upload(tiny)
    ok = tmp_path / "ok.png"
    Image.new("L", (64, 48), 128).save(ok)
    rgb = session.load_upload(ok)
    assert rgb.mode == "RGB" and rgb.size == (64, 48)
    assert session.load_upload(ok.read_bytes()).size == (64, 48)  # bytes (the AIGI panel) too


def test_too_large_says_the_limit_and_offers_a_downscale(tmp_path: Path) -> None:
    png = tmp_path / "big.png"
    Image.new("RGB", (2000, 1000), (10, 200, 30)).save(png)
    with pytest.raises(session.UploadTooLarge) as err:
        session.load_upload(png)
    msg = str(err.value)
    assert "2000×1000 = 2,000,000 pixels" in msg and "1,048,576 pixels" in msg
    assert "MISC_MAX_PIXELS" not in msg and err.value.can_downscale
    # The plain message serves API clients (no button); the page's names its Downscale button.
    assert "Pass a copy downscaled to at most 1448×724" in msg and "Press" not in msg and "**" not in msg
    assert "Press **Downscale to 1448×724** to code a smaller copy." in err.value.page_message
    assert err.value.page_message.startswith("The image is 2000×1000 = 2,000,000 pixels")
    small = session.downscale_upload(png)
    assert small.size == session.fit_size(2000, 1000) == (1448, 724)
    assert small.width * small.height <= session.DEMO_MAX_PIXELS
    assert small.getpixel((700, 300)) == (10, 200, 30)


def test_jpeg_downscale_decodes_at_reduced_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG larger than the decode allowance is still downscaled: its DCT decodes it at 1/8."""
    jpg = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 100, 50)).save(jpg, quality=80)
    monkeypatch.setattr(session, "DOWNSCALE_MAX_PIXELS", 1_000_000)  # 12 Mpx > 1 Mpx, 1/8 of it < 1 Mpx
    small = session.downscale_upload(jpg)
    assert small.size == session.fit_size(4000, 3000)
    png = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000)).save(png)
    monkeypatch.setattr(session, "DOWNSCALE_MAX_PIXELS", 1_100_000)
    with pytest.raises(session.UploadTooLarge, match="too large for the demo to downscale: pass a copy") as err:
        session.downscale_upload(png)
    assert "too large to downscale here: downscale it before uploading" in err.value.page_message


def test_cut_report_says_what_the_limits_cut() -> None:
    typed = (
        "big orange astronaut suit: woman in an orange space suit holding a white helmet with both hands today\n"
        "flag: stars and stripes\nrocket: tall\ntree: green\n\n" + "The astronaut smiles at the camera. " * 20
    )
    kept = session.read_text(typed)
    cuts = session.cut_report(typed, kept, 512, 512)
    assert any("'tree'" in c and "first 3" in c for c in cuts), cuts
    assert any(c.startswith("name 'big orange astronaut suit' cut to 3 words") for c in cuts), cuts
    assert any("cut from 14 to 10 words" in c for c in cuts), cuts
    assert any(c.startswith("paragraph cut from 120 to") for c in cuts), cuts
    assert "bits" in cuts[-1] and "bpp at 512×512" in cuts[-1]
    fits = "cat: a grey tabby\n\nA cat."
    assert session.cut_report(fits, session.read_text(fits), 512, 512) == []


def test_text_made_safe_for_json_and_markdown() -> None:
    assert session.safe_text("a\ud800b\ud83d\ude00") == "a\ufffdb\U0001f600"
    assert session.md_text("<lora:x:1> & <b>") == "&lt;lora:x:1&gt; &amp; &lt;b&gt;"
    info = session.json_safe({"description": {"items": [{"name": "x\udfff"}]}, "n": 3})
    assert json.loads(json.dumps(info, ensure_ascii=False))["description"]["items"][0]["name"] == "x\ufffd"


def test_comparison_yields_each_row_as_it_finishes() -> None:
    from demo.backends import Backends

    image = Image.effect_mandelbrot((96, 96), (-2, -1.5, 1, 1.5), 60).convert("RGB")
    data = pipeline.encode(image, 0.2).data
    decoded = session.decode(data, "bicubic", Backends())
    steps = []
    for cmp in session.compare_steps(image, decoded, len(data), Backends()):
        steps.append([r["method"] for r in cmp.rows])
    assert len(steps) == 1 + len(session.CLASSICAL)
    assert steps[0] == ["MISC (bicubic)", "MISC pixel layer, bicubic"]
    for i, codec in enumerate(session.CLASSICAL, start=1):  # one more row per codec, in order
        assert steps[i] == steps[i - 1] + [codec.upper()]
    final = session.compare(image, decoded, len(data), Backends())
    assert [r["method"] for r in final.rows] == steps[-1]
    assert all("psnr" in r for r in final.rows if r.get("bytes"))
