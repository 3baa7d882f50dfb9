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
    assert "| codec | target bpp | fit | real bpp | PSNR ↑ |" in md
    for codec in CODECS:
        assert f"| {codec} | 0.3 |" in md
    assert "BD-rate of misc" in md
    assert "`misc` encoder: no semantic layer" in md  # the encoder's own notes reach the report
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


class _FakeMetrics:
    """Stands in for metrics/ to check how bench uses it (not what the metrics are)."""

    @staticmethod
    def available(names=None) -> dict:  # noqa: ANN001
        return {
            "psnr": True,
            "fd_fake": {"available": True, "kind": "set"},
            "clip_sim": {"available": False, "reason": "no CLIP weights here"},
        }

    calls: list[list[str]] = []

    @classmethod
    def compute(cls, reference, distorted, names):  # noqa: ANN001
        assert reference.size == distorted.size
        cls.calls.append(list(names))
        return {n: 1.5 for n in names}

    @staticmethod
    def compute_set(references, distorteds, names):  # noqa: ANN001
        assert len(references) == len(distorteds) >= 1
        return {"fd_fake": float(len(references))}


def test_metrics_module_replaces_stand_in_without_recoding(
    run_dir: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from bench import measure

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)

    def boom(self, image, target_bpp):  # noqa: ANN001
        raise AssertionError("coded again although only the metrics changed")

    monkeypatch.setattr(adapters.ClassicalAdapter, "code", boom)
    monkeypatch.setattr(adapters.MiscAdapter, "code", boom)
    cfg = RunConfig(data=data_dir, out=copy, bpps=BPPS, codecs=CODECS, decoder="bicubic")
    # Without metrics/: bench's labelled stand-in PSNR, recomputed from the PNGs.
    monkeypatch.setattr(measure, "_metrics_module", lambda: None)
    summary = run(cfg, progress=False)
    assert summary["errors"] == [] and summary["metrics"]["source"] == "bench stand-in"
    assert main(["report", str(copy)]) == 0
    assert "stand-in" in (copy / "report.md").read_text()
    # With metrics/ (here a fake one): its values replace the stand-in's, still without coding.
    monkeypatch.setattr(measure, "_metrics_module", lambda: _FakeMetrics)
    summary = run(cfg, progress=False)
    assert summary["errors"] == []
    assert summary["metrics"]["unavailable"] == {"clip_sim": "no CLIP weights here"}
    assert all(r["psnr"] == "1.5" for r in _rows(copy) if r["status"] == "ok")
    with open(copy / "per_condition.csv", newline="") as f:
        conds = list(csv.DictReader(f))
    assert conds and all(float(c["fd_fake"]) == float(c["n_images"]) for c in conds)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert all("fd_fake" in c["metrics"] for c in manifest["conditions"])
    assert main(["report", str(copy)]) == 0
    assert (copy / "curves" / "fd_fake.png").is_file()

    # A metric added later is computed alone; the ones already there are kept.
    class _More(_FakeMetrics):
        calls: list[list[str]] = []

        @staticmethod
        def available(names=None) -> dict:  # noqa: ANN001
            return {**_FakeMetrics.available(), "extra": True}

    monkeypatch.setattr(measure, "_metrics_module", lambda: _More)
    assert run(cfg, progress=False)["errors"] == []
    assert _More.calls and all(c == ["extra"] for c in _More.calls)
    assert all(r["psnr"] == "1.5" and r["extra"] == "1.5" for r in _rows(copy) if r["status"] == "ok")
    assert "clip_sim" in (copy / "report.md").read_text()
