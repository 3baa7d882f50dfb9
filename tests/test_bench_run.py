"""`python -m bench run` / `report` end to end on two small photographs.

Checks behaviour, not quality: every file fits its budget and is the file that was
measured, reconstructions have the source's size, the manifest imports into the study,
a second run codes nothing again, and the report writes its table and curves.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from bench import adapters
from bench.__main__ import main
from bench.run import RunConfig, run

BPPS = [0.1, 0.3]  # 160×120 px: 240 and 720 bytes
CODECS = ["misc", "webp", "jxl"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    d = tmp_path_factory.mktemp("images")
    Image.fromarray(data.astronaut()).resize((160, 120), Image.LANCZOS).save(d / "astronaut.png")
    Image.fromarray(data.coffee()).resize((160, 120), Image.LANCZOS).save(d / "coffee.png")
    (d / "notes.txt").write_text("not an image: skipped")
    return d


@pytest.fixture(scope="module")
def run_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    rc = main([
        "run", "--data", str(data_dir), "--bpp", *map(str, BPPS), "--codecs", ",".join(CODECS),
        "--out", str(out), "--decoder", "bicubic", "--metrics", "psnr", "--quiet",
    ])  # fmt: skip
    assert rc == 0, (out / "errors.log").read_text() if (out / "errors.log").exists() else rc
    return out


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "per_image.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_item_is_coded_within_budget(run_dir: Path) -> None:
    rows = _rows(run_dir)
    assert len(rows) == 2 * len(CODECS) * len(BPPS)
    assert {r["codec"] for r in rows} == set(CODECS)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) >= len(rows) - 2  # at 0.1 bpp a codec may not fit; most do
    for r in ok:
        nbytes = int(r["bytes"])
        assert nbytes <= int(r["budget_bytes"]) == int(float(r["target_bpp"]) * 160 * 120 / 8)
        assert float(r["real_bpp"]) == pytest.approx(8 * nbytes / (160 * 120))
        bpp = f"{float(r['target_bpp']):g}"
        bits = list((run_dir / "bits" / r["codec"] / bpp).glob(f"{r['image']}.*"))
        assert len(bits) == 1 and bits[0].stat().st_size == nbytes  # the measured file is the kept file
        with Image.open(run_dir / "recon" / r["codec"] / bpp / f"{r['image']}.png") as im:
            assert im.size == (160, 120)
        assert float(r["psnr"]) > 10
        assert float(r["encode_s"]) >= 0 and float(r["decode_s"]) >= 0
    assert all(r["decoder"] == "bicubic" for r in ok if r["codec"] == "misc")


def test_manifest_imports_into_the_study(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    n_ok = sum(r["status"] == "ok" for r in _rows(run_dir))
    assert manifest["format"] == "misc-study-manifest/1"
    assert len(manifest["stimuli"]) == n_ok
    assert {r["source_id"] for r in manifest["references"]} == {"astronaut", "coffee"}
    study_manifest = pytest.importorskip("study.manifest")
    parsed = study_manifest.parse_json((run_dir / "manifest.json").read_text(), base=run_dir)
    assert len(parsed.stimuli) == n_ok
    assert all(s.reference_path is not None and s.reference_path.is_file() for s in parsed.stimuli)
    assert all("psnr" in s.metrics for s in parsed.stimuli)


def test_second_run_codes_nothing_and_a_lost_item_is_redone(
    run_dir: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (run_dir / "per_image.csv").read_text()

    def boom(self, image, target_bpp):  # noqa: ANN001
        raise AssertionError("coded again although the item was done")

    monkeypatch.setattr(adapters.ClassicalAdapter, "code", boom)
    monkeypatch.setattr(adapters.MiscAdapter, "code", boom)
    cfg = RunConfig(data=data_dir, out=run_dir, bpps=BPPS, codecs=CODECS, decoder="bicubic", metrics=["psnr"])
    summary = run(cfg, progress=False)
    assert summary["errors"] == []
    assert (run_dir / "per_image.csv").read_text() == before

    # Losing one fragment (e.g. killed mid-write) redoes that item only.
    monkeypatch.undo()
    (run_dir / "items" / "webp" / "0.3" / "coffee.json").unlink()
    calls: list[tuple[str, float]] = []
    real = adapters.ClassicalAdapter.code

    def counting(self, image, target_bpp):  # noqa: ANN001
        calls.append((self.name, target_bpp))
        return real(self, image, target_bpp)

    monkeypatch.setattr(adapters.ClassicalAdapter, "code", counting)
    monkeypatch.setattr(adapters.MiscAdapter, "code", boom)
    summary = run(cfg, progress=False)
    assert summary["errors"] == [] and calls == [("webp", 0.3)]
    timeless = [{k: v for k, v in r.items() if not k.endswith("_s")} for r in _rows(run_dir)]
    assert timeless == [
        {k: v for k, v in r.items() if not k.endswith("_s")} for r in csv.DictReader(before.splitlines())
    ]


def test_report_writes_table_curves_and_bd_rates(run_dir: Path) -> None:
    assert main(["report", str(run_dir)]) == 0
    md = (run_dir / "report.md").read_text()
    assert "| codec | target bpp | fit | real bpp | psnr |" in md
    for codec in CODECS:
        assert f"| {codec} | 0.3 |" in md
    assert "BD-rate of misc" in md
    png = run_dir / "curves" / "psnr.png"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 200


def test_bad_arguments_are_reported(tmp_path: Path) -> None:
    assert (
        main(
            [
                "run",
                "--data",
                str(tmp_path),
                "--bpp",
                "0.01",
                "--codecs",
                "webp",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert main(["report", str(tmp_path / "nothing")]) == 2
    with pytest.raises(SystemExit):
        main(["run", "--data", str(tmp_path), "--bpp", "0", "--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="unknown codec"):
        adapters.make("bpg")
