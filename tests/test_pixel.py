"""Pixel layer and rate control: odd inputs, the whole-file ceiling, the minimum."""

from __future__ import annotations

import io

import numpy as np
import pytest
from codec_helpers import kodak, kodak_crop
from PIL import Image

from codec import bitstream as bs
from codec.errors import BitstreamError, BudgetError, ImageInputError
from codec.imageio import load_rgb
from codec.pipeline import budget_bytes, decode, encode, info, read_layers
from codec.pixel import decode_pixels, encode_av1, encode_pixels, psnr


def test_av1_payload_round_trip_has_no_container():
    small = kodak_crop(2, (40, 30))
    payload = encode_av1(small, "qindex", 100)
    assert not payload.startswith(b"\x12\x00")  # temporal delimiter dropped
    out = decode_pixels(payload)
    assert out.size == (40, 30)
    assert psnr(out, small) > 25


def test_corrupt_pixel_payload_is_a_bitstream_error():
    with pytest.raises(BitstreamError):
        decode_pixels(b"\x0a\x0b\x00\x00\x00\x24\xc4\xff\xff")
    with pytest.raises(BitstreamError):
        decode_pixels(b"")


@pytest.mark.parametrize("bpp", [0.01, 0.02, 0.05])
def test_whole_file_is_at_or_below_target_and_close_to_it(bpp):
    img = kodak_crop(3, (256, 192))
    res = encode(img, bpp)
    budget = budget_bytes(256, 192, bpp)
    assert res.nbytes == len(res.data) <= budget
    assert res.bpp <= bpp
    # rate control spends the budget: within a few percent plus a few bytes of it
    assert res.nbytes >= 0.85 * budget - 8
    assert info(res.data)["total_bytes"] == res.nbytes


def test_higher_rate_gives_better_reconstruction():
    img = kodak_crop(7, (256, 256))
    low = decode(encode(img, 0.01).data, decoder="bicubic").image
    high = decode(encode(img, 0.1).data, decoder="bicubic").image
    assert psnr(high, img) > psnr(low, img) + 1.0


def test_target_below_minimum_says_the_minimum():
    img = kodak(1)
    with pytest.raises(BudgetError) as e:
        encode(img, 0.0005)
    assert e.value.minimum_bpp is not None and e.value.minimum_bpp > 0.0005
    assert "smallest file" in str(e.value)
    ok = encode(img, e.value.minimum_bpp + 1e-9)  # the stated minimum really is reachable
    assert ok.nbytes == e.value.minimum_bytes


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_nonsense_targets(bad):
    from codec.errors import ArgumentError

    with pytest.raises(ArgumentError, match="positive number"):
        encode(kodak_crop(1), bad)


def test_factor_hint_is_respected_and_falls_back():
    img = kodak_crop(4, (256, 256))
    choice = encode_pixels(img, 300, factors=(4,))
    assert choice.factor == 4 and choice.factors_hint_used
    tiny = encode_pixels(img, 40, factors=(2,))  # ÷2 cannot fit 40 bytes
    assert not tiny.factors_hint_used and tiny.nbytes <= 40


def test_threaded_search_picks_what_the_serial_one_picks(monkeypatch):
    img = kodak_crop(9, (256, 192))
    monkeypatch.setenv("MISC_ENCODE_THREADS", "2")
    threaded = encode_pixels(img, 200)
    monkeypatch.setenv("MISC_ENCODE_THREADS", "1")
    serial = encode_pixels(img, 200)
    assert threaded.payload == serial.payload
    assert (threaded.factor, threaded.family, threaded.level) == (serial.factor, serial.family, serial.level)
    assert threaded.candidates_tried == serial.candidates_tried


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_input_modes():
    rgb = kodak_crop(9, (64, 48))
    # grayscale
    g, gray = load_rgb(rgb.convert("L"))
    assert gray and g.mode == "RGB"
    # 16-bit grayscale is scaled, not clipped
    arr16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    g16, gray16 = load_rgb(_png(Image.fromarray(arr16)))
    assert gray16 and abs(np.asarray(g16)[..., 0].astype(int) - np.asarray(rgb.convert("L"))).max() <= 1
    # RGBA over white
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)
    flat, _ = load_rgb(rgba)
    assert np.asarray(flat).min() == 255
    # palette
    pal, gray_p = load_rgb(rgb.convert("P", palette=Image.Palette.ADAPTIVE))
    assert pal.mode == "RGB" and not gray_p
    # CMYK
    assert load_rgb(rgb.convert("CMYK"))[0].mode == "RGB"


def test_exif_orientation_is_applied():
    img = kodak_crop(1, (80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    out, _ = load_rgb(buf.getvalue())
    assert out.size == (40, 80)


def test_grayscale_round_trip_decodes_to_one_channel():
    img = kodak_crop(5, (120, 90)).convert("L")
    data = encode(img, 0.1).data
    assert bs.unpack(data).grayscale
    out = decode(data, decoder="bicubic").image
    assert out.mode == "L" and out.size == (120, 90)


@pytest.mark.parametrize("size", [(101, 67), (67, 203), (8, 8), (333, 9)])
def test_odd_sizes_round_trip(size):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    img = img.resize(size)
    data = encode(img, 6.0).data
    layers = read_layers(data)
    assert (layers.width, layers.height) == size
    assert decode(data, decoder="bicubic").image.size == size


def test_bad_images_are_refused():
    with pytest.raises(ImageInputError, match="not a readable image"):
        load_rgb(b"this is not an image")
    with pytest.raises(ImageInputError, match="truncated|corrupt|readable"):
        load_rgb(_png(kodak_crop(1))[:200])
    with pytest.raises(ImageInputError, match="too small"):
        load_rgb(Image.new("RGB", (4, 100)))
    with pytest.raises(ImageInputError, match="above the limit"):
        load_rgb(Image.new("RGB", (300, 300)), max_pixels=50_000)
    with pytest.raises(ImageInputError, match="no such image"):
        load_rgb("/nonexistent/file.png")
