"""Reading a stimulus manifest (JSON or CSV, format in docs/STUDY.md) into plain records.

Parsing is strict and happens before anything touches the database: a malformed row, a
missing column, a non-numeric metric, a duplicate (source, codec, bpp) or a missing image
raises ``ManifestError`` naming the row, so an import either takes everything or nothing.

The loader never opens a file it was not meant to read. Opening and closing the study's
own SQLite file (or its WAL / shared-memory file) in the app's process drops SQLite's
POSIX locks on it, and the next outside open/close then deletes the live WAL: votes
already acknowledged vanish. So every path is checked *before* anything opens it: the
manifest must end in .json/.csv, an image in an image suffix, and no path may be one of
the ``forbidden`` files (compared by device and inode, which ``stat`` reads without
opening, so links and other spellings of the same file are caught too).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.errors import ManifestError

FORMAT = "misc-study-manifest/1"
REQUIRED = ("source_id", "codec", "target_bpp", "path")
MANIFEST_SUFFIXES = (".json", ".csv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
OPTIONAL = ("real_bpp", "reference_path", "source_kind")
SOURCE_KINDS = ("natural", "aigi")  # bench run tags every source: a photograph or an AI-generated image


@dataclass
class StimulusRow:
    source_id: str
    codec: str
    target_bpp: float
    path: Path
    real_bpp: float | None = None
    reference_path: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    source_kind: str = "natural"

    @property
    def condition(self) -> tuple[str, float]:
        return (self.codec, self.target_bpp)


@dataclass
class ConditionRow:
    codec: str
    target_bpp: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Manifest:
    name: str
    stimuli: list[StimulusRow]
    conditions: list[ConditionRow] = field(default_factory=list)


def _number(value: Any, what: str, *, positive: bool = False, allow_none: bool = False) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if allow_none:
            return None
        raise ManifestError(f"{what} is missing")
    if isinstance(value, bool):
        raise ManifestError(f"{what} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{what} must be a number, got {value!r}") from None
    if math.isnan(x):
        if allow_none:
            return None
        raise ManifestError(f"{what} is NaN")
    if math.isinf(x):
        raise ManifestError(f"{what} is infinite")
    if positive and x <= 0:
        raise ManifestError(f"{what} must be > 0, got {x:g}")
    return x


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > 200:
        raise ManifestError(f"{what} is longer than 200 characters")
    return value.strip()


def _metrics(raw: Any, what: str) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ManifestError(f"{what}: metrics must be an object of name -> number")
    out: dict[str, float] = {}
    for k, v in raw.items():
        x = _number(v, f"{what}: metric {k!r}", allow_none=True)
        if x is not None:
            out[_text(str(k), f"{what}: metric name")] = x
    return out


FileIds = frozenset[tuple[int, int]]


def file_ids(paths: list[Path]) -> FileIds:
    """(device, inode) of the paths that exist; ``stat`` never opens the file."""
    out = set()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return frozenset(out)


def check_path(path: Path, suffixes: tuple[str, ...], forbidden: FileIds, what: str) -> Path:
    """Refuse, without opening it, a path of the wrong kind or one of the forbidden files."""
    if path.suffix.lower() not in suffixes:
        raise ManifestError(f"{what}: {path.name} must end in {' or '.join(suffixes)}")
    if file_ids([path]) & forbidden:
        raise ManifestError(f"{what}: {path} is one of the study database's own files")
    if not path.is_file():
        raise ManifestError(f"{what}: file not found: {path}")
    return path


def _resolve(p: str, base: Path | None, files: dict[str, Path] | None, what: str,
             forbidden: FileIds = frozenset()) -> Path:
    if files is not None:  # upload: match on file name only
        name = Path(p.replace("\\", "/")).name
        if name not in files:
            raise ManifestError(f"{what}: image {name!r} was not uploaded")
        return files[name]
    path = Path(p)
    if not path.is_absolute() and base is not None:
        path = base / path
    return check_path(path, IMAGE_SUFFIXES, forbidden, f"{what}: image")


def _stimulus(raw: dict[str, Any], i: int, base: Path | None, files: dict[str, Path] | None,
              forbidden: FileIds = frozenset()) -> StimulusRow:
    what = f"stimulus row {i + 1}"
    if not isinstance(raw, dict):
        raise ManifestError(f"{what} must be an object")
    for key in REQUIRED:
        if key not in raw:
            raise ManifestError(f"{what}: missing {key!r}")
    ref = raw.get("reference_path")
    kind = raw.get("source_kind") or "natural"
    if kind not in SOURCE_KINDS:
        raise ManifestError(f"{what}: source_kind must be one of {', '.join(SOURCE_KINDS)}, not {str(kind)[:40]!r}")
    return StimulusRow(
        source_id=_text(raw["source_id"], f"{what}: source_id"),
        codec=_text(raw["codec"], f"{what}: codec"),
        target_bpp=_number(raw["target_bpp"], f"{what}: target_bpp", positive=True),  # type: ignore[arg-type]
        path=_resolve(_text(raw["path"], f"{what}: path"), base, files, what, forbidden),
        real_bpp=_number(raw.get("real_bpp"), f"{what}: real_bpp", allow_none=True),
        reference_path=(_resolve(_text(ref, f"{what}: reference_path"), base, files, what, forbidden)
                        if ref else None),
        metrics=_metrics(raw.get("metrics"), what),
        source_kind=kind,
    )


def _condition(raw: Any, i: int) -> ConditionRow:
    what = f"condition row {i + 1}"
    if not isinstance(raw, dict) or "codec" not in raw or "target_bpp" not in raw:
        raise ManifestError(f"{what} must be an object with 'codec' and 'target_bpp'")
    if "metrics" in raw:
        metrics = _metrics(raw["metrics"], what)
    else:  # CSV form: every other column is a metric
        metrics = _metrics({k: v for k, v in raw.items() if k not in ("codec", "target_bpp")}, what)
    return ConditionRow(
        codec=_text(raw["codec"], f"{what}: codec"),
        target_bpp=_number(raw["target_bpp"], f"{what}: target_bpp", positive=True),  # type: ignore[arg-type]
        metrics=metrics,
    )


def _check(manifest: Manifest) -> Manifest:
    if not manifest.stimuli:
        raise ManifestError("the manifest has no stimuli")
    seen: set[tuple[str, str, float]] = set()
    refs: dict[str, Path | None] = {}
    for row in manifest.stimuli:
        key = (row.source_id, row.codec, row.target_bpp)
        if key in seen:
            raise ManifestError(f"duplicate stimulus: source {row.source_id!r}, {row.codec}@{row.target_bpp:g}")
        seen.add(key)
        if row.source_id in refs and refs[row.source_id] != row.reference_path:
            raise ManifestError(f"source {row.source_id!r}: rows disagree on reference_path")
        refs[row.source_id] = row.reference_path
    conds = {r.condition for r in manifest.stimuli}
    seen_c: set[tuple[str, float]] = set()
    for c in manifest.conditions:
        k = (c.codec, c.target_bpp)
        if k in seen_c:
            raise ManifestError(f"duplicate condition row {c.codec}@{c.target_bpp:g}")
        if k not in conds:
            raise ManifestError(f"condition {c.codec}@{c.target_bpp:g} has no stimuli")
        seen_c.add(k)
    return manifest


def parse_json(text: str, base: Path | None = None, files: dict[str, Path] | None = None,
               default_name: str = "study", forbidden: FileIds = frozenset()) -> Manifest:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"manifest is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("stimuli"), list):
        raise ManifestError("manifest JSON must be an object with a 'stimuli' list")
    fmt = data.get("format")
    if fmt is not None and fmt != FORMAT:
        raise ManifestError(f"unknown manifest format {fmt!r} (expected {FORMAT!r})")
    conditions = data.get("conditions") or []
    if not isinstance(conditions, list):
        raise ManifestError("'conditions' must be a list")
    name = data.get("name") or default_name
    return _check(Manifest(
        name=_text(str(name), "name"),
        stimuli=[_stimulus(r, i, base, files, forbidden) for i, r in enumerate(data["stimuli"])],
        conditions=[_condition(r, i) for i, r in enumerate(conditions)],
    ))


def _csv_rows(text: str, what: str) -> list[dict[str, str]]:
    try:
        reader = csv.DictReader(io.StringIO(text))
        rows = list(reader)
    except csv.Error as e:
        raise ManifestError(f"{what} is not valid CSV: {e}") from None
    if reader.fieldnames is None:
        raise ManifestError(f"{what} is empty")
    for r in rows:
        if None in r:
            raise ManifestError(f"{what}: a row has more fields than the header")
    return rows


def parse_csv(text: str, base: Path | None = None, files: dict[str, Path] | None = None,
              conditions_text: str | None = None, name: str = "study", forbidden: FileIds = frozenset()) -> Manifest:
    rows = _csv_rows(text, "manifest CSV")
    header = list(rows[0].keys()) if rows else []
    if not rows:
        raise ManifestError("manifest CSV has no rows")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ManifestError(f"manifest CSV lacks required column(s): {', '.join(missing)}")
    stimuli = []
    for i, r in enumerate(rows):
        raw: dict[str, Any] = {k: r[k] for k in REQUIRED}
        for k in OPTIONAL:
            if r.get(k, "").strip():
                raw[k] = r[k]
        raw["metrics"] = {
            (k[len("metric:"):] if k.startswith("metric:") else k): (v if v.strip() else None)
            for k, v in r.items() if k not in REQUIRED and k not in OPTIONAL
        }
        stimuli.append(_stimulus(raw, i, base, files, forbidden))
    conditions = []
    if conditions_text is not None:
        crow = _csv_rows(conditions_text, "conditions CSV")
        conditions = [_condition(r, i) for i, r in enumerate(crow)]
    return _check(Manifest(name=name, stimuli=stimuli, conditions=conditions))


def load_manifest(path: str | Path, forbidden: list[Path] | None = None) -> Manifest:
    """Read a manifest file written by ``bench/`` (JSON or CSV, see docs/STUDY.md).

    ``forbidden``: files that must never be opened (the study database's own files, see
    ``db.Database.files``); every path is checked before it is opened.
    """
    path = Path(path)
    ids = file_ids(forbidden or [])
    check_path(path, MANIFEST_SUFFIXES, ids, "manifest")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"cannot read manifest {path}: {e}") from None
    if path.suffix.lower() == ".json":
        return parse_json(text, base=path.parent, default_name=path.parent.name or path.stem, forbidden=ids)
    cond = path.parent / "conditions.csv"
    cond_text = None
    if cond.is_file() and cond != path:
        cond_text = check_path(cond, MANIFEST_SUFFIXES, ids, "conditions").read_text(encoding="utf-8")
    return parse_csv(text, base=path.parent, name=path.parent.name or path.stem, conditions_text=cond_text,
                     forbidden=ids)
