"""Decode bombs (issue 11): a file of a few dozen bytes whose header names a huge picture.

The bombs are real files with the header's width and height edited and the checksum
recomputed, as an attacker makes them. They must be refused from the header, before any
layer is decoded, by the codec API, the CLI and the demo's /decode endpoint, with a typed
error that says the size and the limit; a raised limit lets them through.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from codec import bitstream as bs
from codec import pipeline
from codec.errors import ArgumentError, BitstreamError, PixelLimitError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small() -> bytes:
    return pipeline.encode(Image.new("RGB", (64, 48), (120, 80, 40)), 0.5, decoder_hint="bicubic").data


def bomb(data: bytes, width: int, height: int) -> bytes:
    """`data` with the header's size edited, the checksum recomputed (pack writes it)."""
    return bs.pack(dataclasses.replace(bs.unpack(data), width=width, height=height))


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any layer of the file is decoded: a refusal must come first."""

    def boom(*a, **k):
        raise AssertionError("a layer was decoded before the size was checked")

    monkeypatch.setattr(pipeline, "decode_pixels", boom)


@pytest.mark.parametrize("side", [(2048, 2048), (8192, 8192), (16384, 4096)])
def test_codec_refuses_a_bomb_from_its_header(small, side, no_decoding, monkeypatch):
    monkeypatch.delenv("MISC_MAX_PIXELS", raising=False)
    data = bomb(small, *side)
    assert len(data) < 100
    for call in (lambda: pipeline.decode(data, "bicubic"), lambda: pipeline.read_layers(data)):
        with pytest.raises(PixelLimitError) as e:
            call()
        assert (e.value.width, e.value.height, e.value.limit) == (*side, 1024 * 1024)
        assert f"{side[0]}x{side[1]}" in str(e.value) and "1,048,576" in str(e.value)
        assert isinstance(e.value, BitstreamError)  # callers catching bad files catch it too


def test_limit_is_configurable_and_applies_to_encode_alike(small, monkeypatch):
    data = bomb(small, 1100, 1000)
    with pytest.raises(PixelLimitError):
        pipeline.decode(data, "bicubic")
    assert pipeline.decode(data, "bicubic", max_pixels=1_100_000).image.size == (1100, 1000)
    monkeypatch.setenv("MISC_MAX_PIXELS", "1100000")
    assert pipeline.read_layers(data).width == 1100
    monkeypatch.setenv("MISC_MAX_PIXELS", "1099999")
    with pytest.raises(PixelLimitError):
        pipeline.read_layers(data)
    monkeypatch.setenv("MISC_MAX_PIXELS", "lots")
    with pytest.raises(ArgumentError, match="MISC_MAX_PIXELS"):
        pipeline.read_layers(data)
    monkeypatch.delenv("MISC_MAX_PIXELS")
    # The encoder has the same limit, so whatever it writes decodes.
    from codec.errors import ImageInputError

    with pytest.raises(ImageInputError, match="1,048,576"):
        pipeline.encode(Image.new("RGB", (1100, 1000)), 0.02, decoder_hint="bicubic")
    at_limit = pipeline.encode(Image.new("RGB", (1024, 1024), (9, 99, 199)), 0.01, decoder_hint="bicubic")
    assert pipeline.decode(at_limit.data, "bicubic").image.size == (1024, 1024)


def test_pixel_layer_larger_than_the_header_is_refused_before_allocation(small):
    """The AV1 sequence header names its own frame size: dav1d gets the header's area as
    its limit, so a 64x48 picture cannot carry a 640x480 frame."""
    from codec.pixel import decode_pixels, encode_av1

    big = encode_av1(Image.new("RGB", (640, 480), (50, 60, 70)))
    f = bs.unpack(small)
    data = bs.pack(dataclasses.replace(f, sections=[bs.Section(bs.SectionType.PIXEL_AV1, big)]))
    with pytest.raises(BitstreamError):
        pipeline.read_layers(data)
    with pytest.raises(BitstreamError):
        pipeline.info(data)
    with pytest.raises(BitstreamError):
        decode_pixels(big, max_pixels=640 * 480 - 1)
    assert decode_pixels(big, max_pixels=640 * 480).size == (640, 480)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codec", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_refuses_a_bomb_with_one_line_and_exit_2(small, tmp_path):
    path = tmp_path / "bomb.misc"
    path.write_bytes(bomb(small, 2048, 2048))
    out = tmp_path / "out.png"
    r = _cli("decode", str(path), "-o", str(out), "--decoder", "bicubic")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "2048x2048" in r.stderr
    assert not out.exists()
    r = _cli("decode", str(path), "-o", str(out), "--decoder", "bicubic", "--max-pixels", str(2048 * 2048))
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (2048, 2048)


def test_cli_reads_no_more_than_a_misc_file_holds(tmp_path):
    """A 3 GiB file (sparse: it costs no disk) under a 2 GiB address-space limit: read
    whole, it is a MemoryError and a traceback; bounded, a one-line refusal."""
    big = tmp_path / "huge.misc"
    with open(big, "wb") as fp:
        fp.truncate(3 * 1024**3)
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3)); "
        "from codec.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    r = subprocess.run([sys.executable, "-c", code, "decode", str(big), "-o", str(tmp_path / "x.png")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "4,194,304" in r.stderr


def test_web_decode_refuses_a_bomb_and_an_oversized_upload(small, tmp_path, no_decoding, monkeypatch):
    """The demo's /decode function (what gradio_client reaches), called directly."""
    import gradio as gr

    from demo.api import _decode_api
    from demo.backends import Backends

    monkeypatch.delenv("MISC_MAX_PIXELS", raising=False)
    decode = _decode_api(Backends())
    path = tmp_path / "bomb.misc"
    for side in (2048, 8192):
        path.write_bytes(bomb(small, side, side))
        with pytest.raises(gr.Error) as e:
            decode(str(path), "bicubic")
        assert e.value.title == "PixelLimitError" and f"{side}x{side}" in e.value.message
    huge = tmp_path / "huge.misc"
    with open(huge, "wb") as fp:
        fp.truncate(64 * 1024**2)
    with pytest.raises(gr.Error, match="4,194,304 bytes"):
        decode(str(huge), "bicubic")


def test_web_decode_refuses_text_that_is_no_unicode(tmp_path, monkeypatch):
    """A TEXT layer with lone surrogates (written by an encoder without the check) decoded
    and then broke /decode's JSON answer; now the parser refuses it, typed."""
    import gradio as gr

    from codec.records import Description, Item
    from codec.textcoder import coder
    from demo.api import _decode_api
    from demo.backends import Backends

    bad = Description(items=[Item("cat", "grey \ud800")], overall="A cat \udfff.")
    monkeypatch.setattr(coder, "SURROGATES", range(0), raising=False)
    data = pipeline.encode(Image.new("RGB", (64, 48), (120, 80, 40)), 0.9, description=bad,
                           decoder_hint="bicubic").data
    monkeypatch.undo()
    path = tmp_path / "surrogates.misc"
    path.write_bytes(data)
    with pytest.raises(gr.Error) as e:
        _decode_api(Backends())(str(path), "bicubic")
    assert e.value.title == "BitstreamError" and "surrogate" in e.value.message
