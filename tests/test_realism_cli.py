"""--realism on the command lines: python -m codec encode and python -m bench run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from codec_helpers import codec_cli, kodak_crop

from bench.__main__ import main as bench_main
from bench.run import RunConfig, realism_conditions
from codec import bitstream as bs


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("realism") / "photo.png"
    kodak_crop(7, (128, 96)).save(p)
    return p


def test_encode_with_realism_stores_the_detail_level(photo, tmp_path):
    out = tmp_path / "a.misc"
    r = codec_cli("encode", str(photo), "-o", str(out), "--bpp", "0.1", "--decoder", "restore", "--realism", "0")
    assert r.returncode == 0, r.stderr
    enc = json.loads(r.stdout)
    assert enc["realism"]["R"] == 0 and enc["bytes"] == out.stat().st_size
    f = bs.unpack(out.read_bytes())
    assert f.section(bs.SectionType.REALISM)[0] / 16 == enc["realism"]["detail"]
    png = tmp_path / "a.png"
    r = codec_cli("decode", str(out), "-o", str(png), "--decoder", "restore")
    assert r.returncode == 0, r.stderr and png.exists()


def test_realism_off_is_todays_file(photo, tmp_path):
    out = tmp_path / "b.misc"
    r = codec_cli("encode", str(photo), "-o", str(out), "--bpp", "0.1", "--decoder", "restore", "--realism", "off")
    assert r.returncode == 0, r.stderr
    assert "realism" not in json.loads(r.stdout)
    assert bs.unpack(out.read_bytes()).section(bs.SectionType.REALISM) is None


@pytest.mark.parametrize("value", ["2", "-0.5", "nan", "much"])
def test_bad_realism_is_one_line_and_exit_2(photo, tmp_path, value):
    r = codec_cli("encode", str(photo), "-o", str(tmp_path / "c.misc"), "--realism", value)
    assert r.returncode == 2 and "realism" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c.misc").exists()


def test_bench_run_makes_one_condition_per_realism_value(photo, tmp_path, capsys):
    data = photo.parent
    out = tmp_path / "run"
    rc = bench_main(["run", "--data", str(data), "--bpp", "0.1", "--codecs", "misc,webp", "--out", str(out),
                     "--decoder", "restore", "--metrics", "psnr", "--realism", "off,0", "--quiet"])  # fmt: skip
    assert rc == 0
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["codec"] for r in rows} == {"misc", "misc-r0", "webp"}
    r0 = bs.unpack((out / "bits" / "misc-r0" / "0.1" / "photo.misc").read_bytes())
    today = bs.unpack((out / "bits" / "misc" / "0.1" / "photo.misc").read_bytes())
    assert r0.section(bs.SectionType.REALISM) is not None and today.section(bs.SectionType.REALISM) is None
    manifest = json.loads((out / "manifest.json").read_text())
    assert {c["codec"] for c in manifest["conditions"]} == {"misc", "misc-r0", "webp"}
    from bench.realism import main as realism_main

    assert realism_main(["table", str(out), "--common"]) == 0
    text = capsys.readouterr().out
    assert "| misc-r0 | 0.1 | 1 |" in text and "| webp | 0.1 | 1 |" in text and "/1 |" in text


def test_realism_conditions_inject_a_perceptual_scorer_only_when_needed(tmp_path):
    from bench import adapters

    cfg = RunConfig(data=tmp_path, out=tmp_path, bpps=[0.01], codecs=["misc"], realism=[None, 0.0])
    names, ads = realism_conditions(["misc"], {"misc": adapters.make("misc")}, cfg)
    assert names == ["misc", "misc-r0"] and "realism" not in ads["misc"].options
    assert ads["misc-r0"].options["realism"] == 0.0 and ads["misc-r0"].options["perceptual"] is None
    cfg.full_alpha = True  # bench run --full-alpha: R = 0 takes its detail level from one full decode
    names, ads = realism_conditions(["misc"], {"misc": adapters.make("misc")}, cfg)
    assert "realism" not in ads["misc"].options and ads["misc-r0"].options["realism"].full_alpha


def test_full_alpha_on_the_command_line(photo, tmp_path):
    out = tmp_path / "f.misc"
    r = codec_cli("encode", str(photo), "-o", str(out), "--bpp", "0.1", "--decoder", "restore", "--realism", "0",
                  "--full-alpha")  # fmt: skip
    assert r.returncode == 0, r.stderr
    enc = json.loads(r.stdout)
    assert bs.unpack(out.read_bytes()).section(bs.SectionType.REALISM)[0] / 16 == enc["realism"]["detail"]
    r = codec_cli("encode", str(photo), "-o", str(tmp_path / "g.misc"), "--realism", "off", "--full-alpha")
    assert r.returncode == 2 and "--full-alpha" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "g.misc").exists()


@pytest.mark.parametrize("value", ["2", "x", ""])
def test_bench_rejects_bad_realism(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as e:
        bench_main(["run", "--data", str(tmp_path), "--bpp", "0.1", "--out", str(tmp_path / "o"), "--realism", value])
    assert e.value.code == 2 and "realism" in capsys.readouterr().err


def test_demo_slider_value_reaches_the_encoder():
    from demo import session

    img = kodak_crop(7, (128, 96))
    enc = session.encode(img, 0.1, None, None, "restore", realism=0.0)
    assert enc.result.loop is not None and enc.result.loop.realism == 0.0
    assert bs.unpack(enc.result.data).section(bs.SectionType.REALISM) is not None
    assert session.encode(img, 0.1, None, None, "restore").result.loop is None
    assert callable(session._realism_options(0.5)["perceptual"])
