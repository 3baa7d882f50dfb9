"""python -m codec encode | decode | info, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codec_helpers import codec_cli as run
from codec_helpers import kodak_crop
from PIL import Image


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cli") / "photo.png"
    kodak_crop(3, (192, 128)).save(p)
    return p


def test_encode_info_decode(photo, tmp_path):
    out = tmp_path / "a.misc"
    r = run("encode", str(photo), "-o", str(out), "--bpp", "0.05", "--decoder", "bicubic")
    assert r.returncode == 0, r.stderr
    enc = json.loads(r.stdout)
    assert enc["bytes"] == out.stat().st_size
    assert enc["bpp"] <= 0.05

    r = run("info", str(out))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["width"], info["height"]) == (192, 128)
    assert info["total_bytes"] == out.stat().st_size
    parts = info["header_bytes"] + info["checksum_bytes"] + sum(s["bytes"] for s in info["sections"].values())
    assert parts == info["total_bytes"]
    assert info["semantic_layer"] == "none"

    png = tmp_path / "a.png"
    r = run("decode", str(out), "-o", str(png), "--decoder", "bicubic")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["decoder"] == "bicubic"
    assert Image.open(png).size == (192, 128)


def test_bad_inputs_give_one_line_and_nonzero_exit(photo, tmp_path):
    junk = tmp_path / "junk.misc"
    junk.write_bytes(b"M\x01garbage-garbage")
    for args, code in [
        (("info", str(junk)), 2),
        (("decode", str(junk), "-o", str(tmp_path / "x.png")), 2),
        (("info", str(tmp_path / "missing.misc")), 2),
        (("encode", str(junk), "-o", str(tmp_path / "y.misc")), 2),
        (("encode", str(photo), "-o", str(tmp_path / "z.misc"), "--bpp", "0.0001"), 3),
    ]:
        r = run(*args)
        assert r.returncode == code, (args, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "z.misc").exists()
    r = run("encode", str(photo), "-o", str(tmp_path / "z.misc"), "--bpp", "0.0001")
    assert "bpp" in r.stderr and "smallest" in r.stderr


def test_truncated_file_is_refused(photo, tmp_path):
    out = tmp_path / "t.misc"
    assert run("encode", str(photo), "-o", str(out), "--bpp", "0.05", "--decoder", "bicubic").returncode == 0
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    r = run("decode", str(out), "-o", str(tmp_path / "t.png"))
    assert r.returncode == 2 and ("truncated" in r.stderr or "checksum" in r.stderr)


def test_nonsense_arguments_are_bad_input_on_one_line(photo, tmp_path):
    """Exit 2 (bad input), one line, no traceback: a negative or non-numeric target is
    not a target below the minimum (exit 3), and an unknown decoder is a user's typo."""
    good = tmp_path / "good.misc"
    assert run("encode", str(photo), "-o", str(good), "--bpp", "0.05", "--decoder", "bicubic").returncode == 0
    for args in [
        ("encode", str(photo), "-o", str(tmp_path / "a.misc"), "--bpp", "-1"),
        ("encode", str(photo), "-o", str(tmp_path / "a.misc"), "--bpp", "nan"),
        ("encode", str(photo), "-o", str(tmp_path / "a.misc"), "--decoder", "nonsense"),
        ("encode", str(photo), "-o", str(tmp_path / "a.misc"), "--max-pixels", "0"),
        ("decode", str(good), "-o", str(tmp_path / "a.png"), "--decoder", "nonsense"),
        ("decode", str(good), "-o", str(tmp_path / "a.png"), "--max-pixels", "-5"),
    ]:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr
    r = run("decode", str(good), "-o", str(tmp_path / "a.png"), "--decoder", "nonsense")
    assert "unknown decoder 'nonsense'" in r.stderr and "bicubic" in r.stderr
    assert not (tmp_path / "a.misc").exists() and not (tmp_path / "a.png").exists()
