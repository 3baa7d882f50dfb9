"""`python -m bench run`: every image × every codec × every target → files, metrics, manifest.

    DIR/*.png ─▶ adapter.code(image, bpp) ─▶ bits/<codec>/<bpp>/<id><ext>   (the real file)
                          │                 ─▶ recon/<codec>/<bpp>/<id>.png (its decode)
                          └─▶ metrics vs the source ─▶ items/<codec>/<bpp>/<id>.json
    items/*.json ─▶ per_image.csv, per-condition set metrics ─▶ per_condition.csv
                 ─▶ manifest.json (docs/STUDY.md format) + run.json (config, what is missing)

Resumable: an item is done when its JSON fragment exists (written last, atomically, after
its PNG) and holds every metric the run asks for; a fragment with missing metrics gets
them from its PNG without coding again. The CSVs and the manifest are rebuilt from the
fragments at the end of every run, so an interrupted run loses at most the item in hand.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from . import adapters, measure

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")
MANIFEST_FORMAT = "misc-study-manifest/1"
BASE_COLUMNS = [
    "image", "codec", "target_bpp", "status", "real_bpp", "bytes", "budget_bytes", "width", "height",
    "encode_s", "decode_s", "factor", "quality", "decoder", "source_kind",
]  # fmt: skip
SOURCE_KINDS = ("natural", "aigi")


@dataclass
class RunConfig:
    data: Path
    out: Path
    bpps: list[float]
    codecs: list[str]
    decoder: str = "auto"
    limit: int | None = None
    metrics: list[str] | None = None  # None: every available metric
    misc_options: dict[str, Any] = field(default_factory=dict)
    source_kind: str = "auto"  # "auto": each source's own metadata says natural or aigi
    # MISC's fidelity ↔ realism knob: one condition per value, codec "misc-r<R>"; None in the
    # list is today's encoder (realism off, codec "misc"). None: only "misc", realism off.
    realism: list[float | None] | None = None
    full_alpha: bool = False  # R = 0 conditions: the detail level from one full decode (codec.realism)


def bpp_dir(bpp: float) -> str:
    return f"{bpp:g}"


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files[:limit] if limit else files


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_png(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def _write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _paths(out: Path, codec: str, bpp: float, image_id: str, ext: str) -> dict[str, Path]:
    rel = Path(codec) / bpp_dir(bpp)
    return {
        "item": out / "items" / rel / f"{image_id}.json",
        "recon": out / "recon" / rel / f"{image_id}.png",
        "bits": out / "bits" / rel / f"{image_id}{ext}",
    }


def _item_done(item: dict[str, Any] | None, out: Path, mplan: measure.MetricPlan) -> str:
    """'done', 'metrics' (coded, some metric missing or from another source) or 'todo'."""
    if not item:
        return "todo"
    if item.get("status") == "nofit":
        return "done"
    if item.get("status") != "ok" or not (out / item["recon"]).is_file():
        return "todo"
    if item.get("metrics_source") != mplan.source:  # e.g. the stand-in PSNR, now metrics/ is here
        return "metrics"
    have = item.get("metrics", {})
    return "done" if all(n in have for n in mplan.pair) else "metrics"


def source_info(path: Path, forced: str = "auto") -> tuple[str, Any]:
    """(source_kind, recipe): "aigi" when the file's metadata holds a recipe or an AI marker
    (codec.aigi.read_recipe), else "natural"; ``forced`` overrides the kind."""
    if forced not in ("auto", *SOURCE_KINDS):
        raise ValueError(f"source kind must be auto, natural or aigi, not {forced!r}")
    from codec.aigi import read_recipe
    from codec.errors import RecipeError

    try:
        found = read_recipe(path)
    except RecipeError:
        return ("natural" if forced == "auto" else forced), None
    kind = forced if forced != "auto" else ("aigi" if found.is_aigi else "natural")
    return kind, found.recipe


def _code_one(
    adapter: adapters.Adapter, source: Image.Image, image_id: str, src_path: Path, bpp: float, out: Path,
    mplan: measure.MetricPlan, kind: tuple[str, Any] = ("natural", None),
) -> dict[str, Any]:  # fmt: skip
    w, h = source.size
    p = _paths(out, adapter.name, bpp, image_id, adapter.ext)
    row: dict[str, Any] = {
        "image": image_id, "source_path": str(src_path), "codec": adapter.name, "target_bpp": bpp,
        "width": w, "height": h, "budget_bytes": int(bpp * w * h / 8 + 1e-9), "source_kind": kind[0],
    }  # fmt: skip
    try:
        coded = adapter.code(source, bpp, **({"recipe": kind[1]} if kind[1] is not None else {}))
    except adapters.NoFit as e:
        row.update(status="nofit", reason=str(e))
        return row
    assert coded.image.size == source.size, (coded.image.size, source.size)
    _atomic_write(p["bits"], coded.data)
    _atomic_png(p["recon"], coded.image)
    row.update(
        status="ok",
        bytes=len(coded.data),
        real_bpp=8.0 * len(coded.data) / (w * h),
        encode_s=round(coded.encode_seconds, 4),
        decode_s=round(coded.decode_seconds, 4),
        recon=str(p["recon"].relative_to(out)),
        bits=str(p["bits"].relative_to(out)),
        info=coded.info,
        metrics=measure.compute_pair(mplan, source, coded.image),
        metrics_source=mplan.source,
    )
    return row


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark described by `cfg`; returns the run summary (also in run.json)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    images = list_images(cfg.data, cfg.limit)
    mplan = measure.plan(cfg.metrics)
    codec_status = {c: adapters.unavailable(c) for c in cfg.codecs}
    runnable = [c for c in cfg.codecs if codec_status[c] is None]
    ads = {c: adapters.make(c, cfg.decoder, cfg.misc_options) for c in runnable}
    if cfg.realism is not None and "misc" in ads:
        runnable, ads = realism_conditions(runnable, ads, cfg)
    errors: list[dict[str, Any]] = []

    kinds = {img: source_info(img, cfg.source_kind) for img in images}
    jobs = [(img, c, b) for img in images for c in runnable for b in cfg.bpps]
    bar = _progress(len(jobs), progress)
    cache: dict[Path, Image.Image] = {}
    for img_path, codec, bpp in jobs:
        image_id = img_path.stem
        p = _paths(out, codec, bpp, image_id, ads[codec].ext)
        item = _read_json(p["item"])
        state = _item_done(item, out, mplan)
        bar.set_postfix_str(f"{image_id} {codec}@{bpp:g}", refresh=False)
        if state != "done":
            if img_path not in cache:
                cache.clear()
                with Image.open(img_path) as im:
                    cache[img_path] = im.convert("RGB")
            source = cache[img_path]
            try:
                if state == "metrics":
                    assert item is not None
                    keep = item.get("metrics", {}) if item.get("metrics_source") == mplan.source else {}
                    missing = [n for n in mplan.pair if n not in keep]
                    with Image.open(out / item["recon"]) as rec:
                        item["metrics"] = {**keep, **measure.compute_pair(mplan, source, rec, missing)}
                    item["metrics_source"] = mplan.source
                else:
                    item = _code_one(ads[codec], source, image_id, img_path, bpp, out, mplan, kinds[img_path])
                _write_json(p["item"], item)
            except Exception as e:  # noqa: BLE001 - one failure must not lose the whole run
                errors.append({"image": image_id, "codec": codec, "target_bpp": bpp, "error": repr(e),
                               "traceback": traceback.format_exc(limit=6)})  # fmt: skip
        bar.update(1)
    bar.close()

    items = collect(out, [i.stem for i in images], runnable, cfg.bpps, ads)
    kind_of = {img.stem: kinds[img][0] for img in images}
    for it in items:  # fragments from before the tag, or a changed --source-kind
        it["source_kind"] = kind_of.get(it["image"], it.get("source_kind", "natural"))
    conditions = _set_metrics(out, items, mplan, progress)
    write_per_image_csv(out / "per_image.csv", items, mplan.pair)
    write_per_condition_csv(out / "per_condition.csv", conditions, mplan.sets)
    refs = _copy_references(out, images)
    manifest = build_manifest(
        items, conditions, refs, name=f"{Path(cfg.data).name} @ {'/'.join(map(bpp_dir, cfg.bpps))}", kinds=kind_of
    )
    _write_json(out / "manifest.json", manifest)
    summary = {
        "data": str(cfg.data), "images": len(images), "bpps": cfg.bpps, "codecs": cfg.codecs,
        "decoder": cfg.decoder, "realism": cfg.realism, "full_alpha": cfg.full_alpha, "limit": cfg.limit, "codec_unavailable": {c: s for c, s in codec_status.items() if s},
        "metrics": mplan.to_dict(), "errors": errors, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_kinds": {k: sum(v == k for v in kind_of.values()) for k in SOURCE_KINDS},
        "counts": {"ok": sum(i["status"] == "ok" for i in items), "nofit": sum(i["status"] == "nofit" for i in items),
                   "missing": len(images) * len(runnable) * len(cfg.bpps) - len(items)},
    }  # fmt: skip
    notes: dict[str, list[str]] = {}
    for it in items:  # what each codec said about its files (e.g. MISC: "no semantic layer ...")
        for note in it.get("info", {}).get("notes", []) or []:
            if note not in notes.setdefault(it["codec"], []):
                notes[it["codec"]].append(note)
    summary["codec_notes"] = notes
    _write_json(out / "run.json", summary)
    if errors:
        with open(out / "errors.log", "a") as f:
            for e in errors:
                f.write(
                    f"{summary['finished_at']} {e['image']} {e['codec']}@{e['target_bpp']:g}\n{e['traceback']}\n"
                )
    return summary


def realism_condition_name(realism: float | None) -> str:
    return "misc" if realism is None else f"misc-r{realism:g}"


def realism_conditions(
    runnable: list[str], ads: dict[str, Any], cfg: RunConfig
) -> tuple[list[str], dict[str, Any]]:
    """MISC replaced by one condition per realism value (codec.realism), in the order given.
    The loop's perceptual term is metrics' DISTS (bench may import metrics; codec may not)."""
    from codec.realism import LoopConfig, check_realism

    from .realism import dists_scorer

    values = list(dict.fromkeys(cfg.realism or []))
    perceptual = dists_scorer() if any(v not in (None, 0) for v in values) else None
    out_names, out_ads = [], {}
    for c in runnable:
        if c != "misc":
            out_names.append(c)
            out_ads[c] = ads[c]
            continue
        for v in values:
            name = realism_condition_name(v)
            options = dict(cfg.misc_options)
            if v is not None:
                r = check_realism(v)
                options.update(realism=LoopConfig(realism=r, full_alpha=True) if r == 0 and cfg.full_alpha else r,
                               perceptual=perceptual)  # fmt: skip
            out_names.append(name)
            out_ads[name] = adapters.MiscAdapter(decoder=cfg.decoder, options=options, name=name)
    return out_names, out_ads


def _progress(total: int, enabled: bool) -> Any:
    try:
        from tqdm import tqdm

        return tqdm(total=total, disable=not enabled, unit="item", desc="bench")
    except ImportError:  # pragma: no cover - tqdm is pinned

        class _Null:
            def update(self, n: int) -> None: ...
            def set_postfix_str(self, s: str, refresh: bool = True) -> None: ...
            def close(self) -> None: ...

        return _Null()


def collect(
    out: Path,
    image_ids: Sequence[str],
    codecs: Iterable[str],
    bpps: Sequence[float],
    ads: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every finished fragment of this run's grid, in a stable order."""
    rows = []
    for codec in codecs:
        ext = ads[codec].ext if ads else ""
        for bpp in bpps:
            for image_id in image_ids:
                item = _read_json(_paths(out, codec, bpp, image_id, ext)["item"])
                if item and item.get("status") in ("ok", "nofit"):
                    rows.append(item)
    return rows


def _set_metrics(
    out: Path, items: list[dict[str, Any]], mplan: measure.MetricPlan, progress: bool
) -> list[dict[str, Any]]:
    """Set-level metrics per (codec, target), cached per condition with the image list they used."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for it in items:
        if it["status"] == "ok":
            groups.setdefault((it["codec"], float(it["target_bpp"])), []).append(it)
    conditions = []
    for (codec, bpp), rows in groups.items():
        ids = sorted(r["image"] for r in rows)
        cache_path = out / "conditions" / codec / f"{bpp_dir(bpp)}.json"
        cached = _read_json(cache_path)
        if cached and cached.get("images") == ids and all(n in cached.get("metrics", {}) for n in mplan.sets):
            values = cached["metrics"]
        elif mplan.sets:
            by_id = {r["image"]: r for r in rows}
            refs, dists = [], []
            for i in ids:
                with Image.open(by_id[i]["source_path"]) as a, Image.open(out / by_id[i]["recon"]) as b:
                    refs.append(a.convert("RGB"))
                    dists.append(b.convert("RGB"))
            values = measure.compute_set(mplan, refs, dists)
            _write_json(cache_path, {"codec": codec, "target_bpp": bpp, "images": ids, "metrics": values})
        else:
            values = {}
        conditions.append({"codec": codec, "target_bpp": bpp, "n_images": len(ids), "metrics": values})
    return conditions


def _fmt(v: Any) -> Any:
    return "" if v is None else v


def write_per_image_csv(path: Path, items: list[dict[str, Any]], metric_names: Sequence[str]) -> None:
    names = list(dict.fromkeys([*metric_names, *(k for it in items for k in it.get("metrics", {}))]))
    lines = []
    for it in items:
        info = it.get("info", {})
        row = {k: _fmt(it.get(k)) for k in BASE_COLUMNS}
        row.update(
            factor=_fmt(info.get("factor")),
            quality=_fmt(info.get("quality")),
            decoder=_fmt(info.get("decoder")),
        )
        row.update({n: _fmt(it.get("metrics", {}).get(n)) for n in names})
        lines.append(row)
    _write_csv(path, [*BASE_COLUMNS, *names], lines)


def write_per_condition_csv(
    path: Path, conditions: list[dict[str, Any]], metric_names: Sequence[str]
) -> None:
    names = list(dict.fromkeys([*metric_names, *(k for c in conditions for k in c["metrics"])]))
    lines = [
        {"codec": c["codec"], "target_bpp": c["target_bpp"], "n_images": c["n_images"],
         **{n: _fmt(c["metrics"].get(n)) for n in names}}
        for c in conditions
    ]  # fmt: skip
    _write_csv(path, ["codec", "target_bpp", "n_images", *names], lines)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _copy_references(out: Path, images: Sequence[Path]) -> dict[str, str]:
    """Sources copied into the run as PNG, so the run folder is a self-contained stimulus set."""
    refs = {}
    for src in images:
        dst = out / "reference" / f"{src.stem}.png"
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix.lower() == ".png":
                shutil.copyfile(src, dst)
            else:
                with Image.open(src) as im:
                    _atomic_png(dst, im.convert("RGB"))
        refs[src.stem] = str(dst.relative_to(out))
    return refs


def build_manifest(
    items: list[dict[str, Any]], conditions: list[dict[str, Any]], refs: dict[str, str], name: str,
    kinds: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The stimulus manifest of docs/STUDY.md; paths are relative to the run folder.

    Every stimulus names its source as ``reference_path`` (the study's reference for
    golden pairs); ``references`` lists the originals once more as stimuli of their own.
    Every stimulus and reference carries ``source_kind``: "natural" or "aigi".
    """
    kinds = kinds or {}
    stimuli = []
    for it in items:
        if it["status"] != "ok":
            continue
        stimuli.append({
            "id": f"{it['image']}/{it['codec']}@{bpp_dir(it['target_bpp'])}",
            "source_id": it["image"],
            "codec": it["codec"],
            "target_bpp": it["target_bpp"],
            "real_bpp": round(it["real_bpp"], 6),
            "bytes": it["bytes"],
            "path": it["recon"],
            "reference_path": refs[it["image"]],
            "source_path": it["source_path"],
            "source_kind": it.get("source_kind") or kinds.get(it["image"], "natural"),
            "metrics": {k: v for k, v in it.get("metrics", {}).items() if v is not None},
        })  # fmt: skip
    used = {(s["codec"], float(s["target_bpp"])) for s in stimuli}
    conds = [
        {"codec": c["codec"], "target_bpp": c["target_bpp"],
         "metrics": {k: v for k, v in c["metrics"].items() if v is not None}}
        for c in conditions
        if (c["codec"], float(c["target_bpp"])) in used
    ]  # fmt: skip
    references = [
        {"id": f"{k}/reference", "source_id": k, "codec": "reference", "path": v, "source_kind": kinds.get(k, "natural")}
        for k, v in refs.items()
    ]
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "stimuli": stimuli,
        "conditions": conds,
        "references": references,
    }
