"""Creating a study: manifest (or uploaded CSV + images) → stored images → one transaction.

    manifest rows ─► check every image (readable, size limits) ─► copy under its SHA-256
        ─► golden sides: reference + a degraded copy made here, per source with a reference
        ─► one write transaction: Study, Conditions, Stimuli, Pairs (all pairs of test
           stimuli of the same source, plus one golden pair per source)

Images are content-addressed in ``config.stimuli_dir``, so re-importing is harmless and a
failed import leaves at most unreferenced copies; the database gets all rows or none.

Blinding: every stimulus (test images, golden references and degraded copies alike) is
decoded once here and re-encoded as a plain 8-bit RGB PNG with no ancillary chunk at all
(no text, EXIF, ICC profile, time or resolution chunk): a stimulus file carries pixels
and nothing that could name its codec or rate. It is stored as ``<sha256>.png``, an
opaque name derived from those bytes alone, written once (atomic rename, read-only) and
never rewritten, so the app can serve it as a static file while raters fetch it.
Stimuli stored by an older importer (the file's bytes as they were) are brought into this
form at the app's start (``reprepare_stimuli``).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageFilter, UnidentifiedImageError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from db import Condition, Database, Pair, Stimulus, Study
from db.models import RATER_LOGINS
from study.config import StudyConfig
from study.errors import ManifestError, UploadError
from study.manifest import Manifest, load_manifest, parse_csv, parse_json
from study.serving import NAME

log = logging.getLogger("misc.study")

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"}


@dataclass
class StudyOptions:
    scheduler: str = "active"  # "balanced" | "active"
    pairs_per_session: int = 30
    golden_every: int = 8  # one golden pair every N pairs (0: none)
    balanced_votes_per_pair: int = 1
    description: str = ""
    task: str = "quality"  # "quality" | "fidelity" (needs every source's reference image)
    # "none" | "hf" (raters sign in with Hugging Face first; the username is the participant id)
    # | "hf-optional" (the sign-in is offered, not required). Needs the Space's OAuth (docs/STUDY.md).
    rater_login: str = "none"


def _check_image(path: Path, config: StudyConfig, what: str) -> None:
    size = path.stat().st_size
    if size > config.max_image_bytes:
        raise UploadError(f"{what}: {path.name} is {size / 1e6:.1f} MB, above the {config.max_image_bytes / 1e6:.0f} MB limit")
    try:
        with Image.open(path) as im:
            if im.format not in ALLOWED_FORMATS:
                raise UploadError(f"{what}: {path.name} is {im.format}, not an accepted image format")
            if im.width * im.height > config.max_image_pixels:
                raise UploadError(f"{what}: {path.name} is {im.width}×{im.height}, above the pixel limit")
            im.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise UploadError(f"{what}: {path.name} is not a readable image ({e})") from None


def stimulus_png(image: Image.Image) -> bytes:
    """The served form of an image: RGB pixels in a PNG with no metadata chunk.

    The pixels are copied into a fresh image, so nothing of the source's ``info`` (PNG
    text, EXIF, ICC profile, DPI) can reach the encoder; compression settings are fixed,
    so the same pixels always give the same bytes (and the same name).
    """
    rgb = image.convert("RGB")
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    buf = io.BytesIO()
    clean.save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def _store_bytes(data: bytes, config: StudyConfig) -> tuple[Path, str]:
    digest = hashlib.sha256(data).hexdigest()
    target = (config.stimuli_dir / digest[:2] / f"{digest}.png").resolve()
    if not target.exists():  # content-addressed: an existing file already holds these bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target, digest


def _store_image(image: Image.Image, config: StudyConfig) -> tuple[Path, str]:
    return _store_bytes(stimulus_png(image), config)


def _store_file(path: Path, config: StudyConfig) -> tuple[Path, str]:
    with Image.open(path) as im:
        return _store_image(im, config)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_prepared(path: str | Path) -> bool:
    """Whether a stored file is in the served form: under ``<ab>/<sha256>.png`` and a PNG of
    8-bit RGB, not interlaced, whose only chunks are IHDR, IDAT… and IEND.

    Reads the chunk headers only (a seek past each IDAT), so a start-up check of every
    stimulus stays cheap. Anything else (an unreadable or truncated file, a text or ICC
    chunk, a palette, another format) is not prepared.
    """
    path = Path(path)
    if not NAME.fullmatch(path.name) or path.parent.name != path.name[:2]:
        return False
    try:
        with open(path, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                return False
            head = f.read(8 + 13)
            if len(head) < 21 or head[:8] != struct.pack(">I4s", 13, b"IHDR"):
                return False
            depth, colour, interlace = head[16], head[17], head[20]
            if (depth, colour, interlace) != (8, 2, 0):
                return False
            f.seek(4, os.SEEK_CUR)  # the IHDR's CRC
            while len(chunk := f.read(8)) == 8:
                length, kind = struct.unpack(">I4s", chunk)
                if kind == b"IEND":
                    return length == 0 and len(f.read(5)) == 4  # its CRC, then nothing
                if kind != b"IDAT":
                    return False
                f.seek(length + 4, os.SEEK_CUR)
            return False
    except OSError:
        return False


@dataclass
class Reprepared:
    """What ``reprepare_stimuli`` did."""

    stimuli: int = 0  # rows moved to a file in the served form
    files_removed: int = 0  # old copies under the stimulus folder that no row uses any more
    problems: list[str] = field(default_factory=list)  # files that could not be read (rows kept)


def reprepare_stimuli(db: Database, config: StudyConfig) -> Reprepared:
    """Bring stimuli stored by an older importer into the served form (blinding).

    Before stimuli were re-encoded at import, the importer copied each file's bytes as they
    were, under the hash of those bytes and the file's own suffix (``.jpg``, ``.webp``,
    ``.png``): the suffix, and the text / EXIF / ICC chunks inside, could tell a rater the
    codec or the rate. Each such file is decoded once and stored again as a metadata-free
    PNG (``_store_image``); then one transaction points the rows at the new files (pixels
    are unchanged, so votes and pairs stay valid); then the old copies under
    ``config.stimuli_dir`` that no row uses any more are deleted, since that folder is
    reachable through the app's static file route. Files outside the folder are never
    touched. A file that cannot be read is reported and its row left as it was. Running it
    again finds nothing to do.
    """
    with db.read() as s:
        rows = s.execute(select(Stimulus.id, Stimulus.path)).all()
    legacy = [(sid, Path(p)) for sid, p in rows if not is_prepared(p)]
    done = Reprepared()
    if not legacy:
        return done
    stored: dict[Path, tuple[Path, str] | None] = {}
    for _, path in legacy:
        if path in stored:
            continue
        try:
            with Image.open(path) as im:
                if im.width * im.height > config.max_image_pixels:
                    raise ValueError(f"{im.width}×{im.height} is above the pixel limit")
                stored[path] = _store_image(im, config)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError) as e:
            stored[path] = None
            done.problems.append(f"{path}: {e}")
    moved = [(sid, stored[path]) for sid, path in legacy if stored[path] is not None]
    with db.write() as s:
        for sid, (new_path, digest) in moved:
            s.execute(update(Stimulus).where(Stimulus.id == sid).values(path=str(new_path), sha256=digest))
    done.stimuli = len(moved)
    folder = Path(config.stimuli_dir).resolve()
    with db.read() as s:
        used = {Path(p).resolve() for p in s.scalars(select(Stimulus.path))}
    for path in {p.resolve() for p, new in stored.items() if new is not None}:
        if path.is_relative_to(folder) and path not in used and path.is_file():
            path.unlink()
            done.files_removed += 1
    log.info("re-prepared %d stimuli stored by an older importer (%d old copies removed, %d unreadable)",
             done.stimuli, done.files_removed, len(done.problems))
    for problem in done.problems:
        log.warning("stimulus file kept as it was: %s", problem)
    return done


def degrade(image: Image.Image) -> Image.Image:
    """A badly distorted copy for golden pairs: ↓12 bilinear, ↑ back, blur, JPEG quality 5."""
    im = image.convert("RGB")
    w, h = im.size
    small = im.resize((max(w // 12, 4), max(h // 12, 4)), Image.Resampling.BILINEAR)
    big = small.resize((w, h), Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(radius=2))
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=5)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def create_study(db: Database, manifest: Manifest, config: StudyConfig, name: str | None = None,
                 options: StudyOptions | None = None, source: str = "") -> int:
    """Store the images and create the study (status ``draft``). Returns its id."""
    options = options or StudyOptions()
    if options.scheduler not in ("balanced", "active"):
        raise ManifestError(f"scheduler must be 'balanced' or 'active', got {options.scheduler!r}")
    if options.pairs_per_session < 1 or options.golden_every < 0 or options.balanced_votes_per_pair < 0:
        raise ManifestError("pairs_per_session must be ≥ 1, golden_every and balanced_votes_per_pair ≥ 0")
    name = (name or manifest.name).strip()
    if not name:
        raise ManifestError("the study needs a name")
    by_source: dict[str, list] = {}
    for row in manifest.stimuli:
        by_source.setdefault(row.source_id, []).append(row)
    if not any(len(v) >= 2 for v in by_source.values()):
        raise ManifestError("no source image has two or more stimuli: there is nothing to compare")
    if options.task not in ("quality", "fidelity"):
        raise ManifestError(f"task must be 'quality' or 'fidelity', got {options.task!r}")
    if options.rater_login not in RATER_LOGINS:
        raise ManifestError(f"rater_login must be one of {', '.join(RATER_LOGINS)}, got {options.rater_login!r}")
    missing = sorted(k for k, v in by_source.items() if v[0].reference_path is None)
    if options.task == "fidelity" and missing:
        raise ManifestError(f"a fidelity study shows each source's original: no reference_path for "
                            f"{', '.join(missing[:5])}")

    # 1. Every image checked, then stored (outside the transaction; content-addressed).
    for row in manifest.stimuli:
        _check_image(row.path, config, f"source {row.source_id}")
        if row.reference_path is not None:
            _check_image(row.reference_path, config, f"source {row.source_id} reference")
    stored = {id(row): _store_file(row.path, config) for row in manifest.stimuli}
    golden: dict[str, tuple[tuple[Path, str], tuple[Path, str]]] = {}
    for source, rows in by_source.items():
        ref = rows[0].reference_path
        if ref is None:
            continue
        with Image.open(ref) as im:
            golden[source] = (_store_image(im, config), _store_image(degrade(im), config))

    # 2. One transaction for every row.
    try:
        with db.write() as s:
            if s.scalar(select(Study.id).where(Study.name == name)) is not None:
                raise ManifestError(f"a study named {name!r} already exists")
            study = Study(name=name, description=options.description, status="draft",
                          scheduler=options.scheduler, pairs_per_session=options.pairs_per_session,
                          golden_every=options.golden_every,
                          balanced_votes_per_pair=options.balanced_votes_per_pair, source=source,
                          task=options.task, rater_login=options.rater_login)
            s.add(study)
            s.flush()
            set_metrics = {(c.codec, c.target_bpp): c.metrics for c in manifest.conditions}
            conditions: dict[tuple[str, float], Condition] = {}
            for key in sorted({r.condition for r in manifest.stimuli}):
                c = Condition(study_id=study.id, codec=key[0], target_bpp=key[1],
                              set_metrics=set_metrics.get(key, {}))
                s.add(c)
                conditions[key] = c
            s.flush()
            for source, rows in by_source.items():
                stims = []
                for row in rows:
                    path, digest = stored[id(row)]
                    st = Stimulus(study_id=study.id, key=f"{source}|{row.codec}@{row.target_bpp:g}",
                                  source_id=source, role="test", condition_id=conditions[row.condition].id,
                                  path=str(path), sha256=digest, real_bpp=row.real_bpp, metrics=row.metrics,
                                  source_kind=row.source_kind)
                    s.add(st)
                    stims.append(st)
                s.flush()
                for x, y in itertools.combinations(sorted(st.id for st in stims), 2):
                    s.add(Pair(study_id=study.id, stimulus_a_id=x, stimulus_b_id=y))
                if source in golden and (options.golden_every > 0 or options.task == "fidelity"):
                    (rp, rd), (dp, dd) = golden[source]
                    ref_st = Stimulus(study_id=study.id, key=f"{source}|reference", source_id=source,
                                      role="reference", path=str(rp), sha256=rd)
                    s.add(ref_st)  # a fidelity study shows it as the original
                if source in golden and options.golden_every > 0:
                    deg_st = Stimulus(study_id=study.id, key=f"{source}|degraded", source_id=source,
                                      role="degraded", path=str(dp), sha256=dd)
                    s.add(deg_st)
                    s.flush()
                    lo, hi = sorted((ref_st.id, deg_st.id))
                    s.add(Pair(study_id=study.id, stimulus_a_id=lo, stimulus_b_id=hi, is_golden=True,
                               golden_better_id=ref_st.id, kind="golden"))
            s.flush()
            return study.id
    except IntegrityError as e:
        raise ManifestError(f"the study could not be stored: {e.orig}") from None


def import_manifest(db: Database, path: str | Path, config: StudyConfig, name: str | None = None,
                    options: StudyOptions | None = None) -> int:
    """Create a study from a ``bench/`` manifest file (JSON or CSV)."""
    manifest = load_manifest(path, forbidden=db.files())
    return create_study(db, manifest, config, name, options, source=str(Path(path).resolve()))


def import_upload(db: Database, csv_path: str | Path, image_paths: list[str | Path], config: StudyConfig,
                  name: str, options: StudyOptions | None = None,
                  conditions_csv_path: str | Path | None = None) -> int:
    """Create a study from an uploaded CSV (or JSON) manifest and the uploaded image files."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UploadError("no manifest file was uploaded")
    if csv_path.stat().st_size > config.max_csv_bytes:
        raise UploadError(f"the manifest is larger than {config.max_csv_bytes / 1e6:.1f} MB")
    if not image_paths:
        raise UploadError("no images were uploaded")
    if len(image_paths) > config.max_images:
        raise UploadError(f"{len(image_paths)} images uploaded, the limit is {config.max_images}")
    files: dict[str, Path] = {}
    for p in map(Path, image_paths):
        if p.name in files:
            raise UploadError(f"two uploaded images are named {p.name!r}")
        if not p.is_file():
            raise UploadError(f"uploaded file {p.name!r} is missing")
        _check_image(p, config, "upload")
        files[p.name] = p
    try:
        text = csv_path.read_text(encoding="utf-8")
        cond_text = Path(conditions_csv_path).read_text(encoding="utf-8") if conditions_csv_path else None
    except UnicodeDecodeError:
        raise ManifestError("the manifest is not UTF-8 text") from None
    if csv_path.suffix.lower() == ".json":
        manifest = parse_json(text, files=files, default_name=name)
    else:
        manifest = parse_csv(text, files=files, conditions_text=cond_text, name=name)
    return create_study(db, manifest, config, name, options, source=f"upload:{csv_path.name}")
