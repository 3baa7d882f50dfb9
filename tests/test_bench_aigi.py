"""bench.aigi build on a tiny RANDOM-WEIGHT pipeline, then bench run / report split natural / aigi.

The generated pictures are structured noise, not AIGIs: the test proves the plumbing (recipes
embedded and read back, manifest, source_kind tags, regeneration inside the benchmark, the
report's split), nothing about quality.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from bench.__main__ import main as bench_main
from bench.aigi import main as aigi_main
from bench.aigi import read_prompts
from codec.aigi import read_recipe
from codec.aigi.tiny import TINY_MODEL


@pytest.fixture(scope="module")
def aigi_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aigi")
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "a red kite over green hills"}\n\n# comment\n{"prompt": "(a paper boat:1.2), rain"}\n'
    )
    out = root / "set"
    rc = aigi_main(["build", "--models", "tiny-random", "--prompts", str(prompts), "--per-model", "2",
                    "--out", str(out), "--steps", "2", "--size", "64", "--seed", "5"])  # fmt: skip
    assert rc == 0
    return out


def test_build_writes_images_with_recipes_and_a_manifest(aigi_set: Path) -> None:
    man = json.loads((aigi_set / "manifest.json").read_text())
    assert [e["prompt"] for e in man["images"]] == ["a red kite over green hills", "(a paper boat:1.2), rain"]
    for e in man["images"]:
        assert (e["source_kind"], e["weights"], e["model"]) == ("aigi", "random", TINY_MODEL)
        r = read_recipe(aigi_set / e["path"]).recipe
        assert (r.prompt, r.seed, r.steps, r.width, r.model) == (e["prompt"], e["seed"], 2, 64, TINY_MODEL)
    assert [e["seed"] for e in man["images"]] == [5, 6]
    assert json.loads((aigi_set / "regen_models.json").read_text()) == {TINY_MODEL: man["models"][TINY_MODEL]}


def test_build_refuses_bad_arguments(tmp_path: Path) -> None:
    empty = tmp_path / "p.txt"
    empty.write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="no prompts"):
        read_prompts(empty)
    empty.write_text("a prompt\n")
    assert aigi_main(["build", "--models", "tiny-random", "--prompts", str(empty), "--per-model", "0",
                      "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert aigi_main(["build", "--models", "tiny-random", "--prompts", str(empty), "--per-model", "1",
                      "--out", str(tmp_path / "o"), "--size", "60"]) == 2  # fmt: skip


def test_bench_tags_sources_regenerates_aigis_and_splits_the_report(aigi_set, tmp_path, monkeypatch) -> None:
    from skimage import data

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in aigi_set.glob("*.png"):
        shutil.copy(p, mixed / p.name)
    Image.fromarray(data.coffee()).resize((64, 64), Image.LANCZOS).save(mixed / "coffee.png")
    monkeypatch.setenv("MISC_REGEN_MODELS", str(aigi_set / "regen_models.json"))
    out = tmp_path / "run"
    rc = bench_main(["run", "--data", str(mixed), "--bpp", "0.4", "--codecs", "misc,webp", "--out", str(out),
                     "--decoder", "bicubic", "--metrics", "psnr", "--quiet"])  # fmt: skip
    assert rc == 0, (out / "errors.log").read_text() if (out / "errors.log").exists() else rc
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kinds = {r["image"]: r["source_kind"] for r in rows}
    assert kinds == {"coffee": "natural", f"{TINY_MODEL}_0000": "aigi", f"{TINY_MODEL}_0001": "aigi"}
    man = json.loads((out / "manifest.json").read_text())
    assert all(s["source_kind"] == kinds[s["source_id"]] for s in man["stimuli"] + man["references"])
    items = [json.loads(p.read_text()) for p in (out / "items" / "misc").rglob("*.json")]
    regen = {i["image"]: i["info"].get("regeneration") for i in items}
    assert regen == {"coffee": None, f"{TINY_MODEL}_0000": "regenerated", f"{TINY_MODEL}_0001": "regenerated"}
    aigi_psnr = [float(r["psnr"]) for r in rows if r["codec"] == "misc" and r["source_kind"] == "aigi"]
    assert aigi_psnr == [100.0, 100.0]  # bit-exact regeneration (infinite PSNR is written as 100 dB)
    assert json.loads((out / "run.json").read_text())["source_kinds"] == {"natural": 1, "aigi": 2}
    assert bench_main(["report", str(out)]) == 0
    md = (out / "report.md").read_text()
    nat = md[md.index("### Natural sources") : md.index("### AI-generated sources")]
    ai = md[md.index("### AI-generated sources") : md.index("## Curves")]
    assert "| misc | 0.4 | 1/1 |" in nat and "| misc | 0.4 | 2/2 |" in ai
