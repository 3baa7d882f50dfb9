"""Studies imported before blinding: their stimuli are brought into the served form at start.

An older importer copied each image's bytes as they were, under the hash of those bytes and
the file's own suffix: a rater could read the codec from a ``.jpg`` URL, or a PNG's text
chunk ("codec=jpeg bpp=0.01"). ``reprepare_stimuli`` re-encodes such files once (the app runs
it at start), points the rows at them and deletes the old copies from the served folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select, update
from study_helpers import make_config, write_images_manifest
from study_http import serve_study
from test_study_import_blinding import _assert_clean, _session, _tag_images

from db import Database, Pair, Stimulus
from study.importer import StudyOptions, import_manifest, is_prepared, reprepare_stimuli, stimulus_png
from study.service import StudyService


def _legacy_copy(src: Path, folder: Path, fmt: str | None = None) -> Path:
    """What the importer of stop 15 stored: the bytes as they were, ``<ab>/<sha256><suffix>``."""
    if fmt is None:
        data, suffix = src.read_bytes(), src.suffix.lower()
    else:  # a lossy condition arrives as its own format (JPEG, WebP), with its metadata
        buf = io.BytesIO()
        with Image.open(src) as im:
            exif = Image.Exif()
            exif[0x010E] = f"codec={fmt.lower()}"  # ImageDescription, as an encoder may leave it
            im.convert("RGB").save(buf, format=fmt, quality=90, exif=exif.tobytes())
        data, suffix = buf.getvalue(), {"JPEG": ".jpg", "WEBP": ".webp"}[fmt]
    digest = hashlib.sha256(data).hexdigest()
    target = folder / digest[:2] / f"{digest}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _legacy_study(tmp: Path) -> tuple[StudyService, int, Path]:
    """A study whose rows point at legacy copies (tagged PNGs, a JPEG and a WebP condition)."""
    manifest = write_images_manifest(tmp / "bench")
    _tag_images(manifest)
    config = make_config(tmp)
    service = StudyService(Database(config.db_url), seed=0)
    sid = import_manifest(service.db, manifest, config, options=StudyOptions(pairs_per_session=6, golden_every=3))
    service.set_status(sid, "open")
    bench = manifest.parent
    with service.db.write() as s:
        for st in s.scalars(select(Stimulus).where(Stimulus.study_id == sid)):
            source, what = st.key.split("|")
            if what in ("reference", "degraded"):
                src = bench / f"{source}.png"
                if what == "degraded":  # the old importer wrote it as a PNG of its own, tagged here
                    info = PngImagePlugin.PngInfo()
                    info.add_text("Comment", "degraded")
                    src = tmp / f"{source}_degraded.png"
                    with Image.open(bench / f"{source}.png") as im:
                        im.convert("P").save(src, pnginfo=info)
                legacy = _legacy_copy(src, config.stimuli_dir)
            else:
                c = what.split("@")[0].removeprefix("codec")
                legacy = _legacy_copy(bench / f"{source}_c{c}.png", config.stimuli_dir,
                                      {"0": "JPEG", "1": "WEBP"}.get(c))
            st.path, st.sha256 = str(legacy), legacy.stem
    return service, sid, config.stimuli_dir


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_is_prepared_reads_the_chunks_and_the_name(tmp_path: Path) -> None:
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (12, 10, 3), dtype=np.uint8))
    data = stimulus_png(rgb)
    digest = hashlib.sha256(data).hexdigest()
    good = tmp_path / digest[:2] / f"{digest}.png"
    good.parent.mkdir()
    good.write_bytes(data)
    assert is_prepared(good)

    def named(blob: bytes, where: str = "") -> Path:
        d = hashlib.sha256(blob).hexdigest()
        p = tmp_path / (where or d[:2]) / f"{d}.png"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(blob)
        return p

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "codec=jpeg")
    for kw in ({"pnginfo": info}, {"icc_profile": b"\0" * 64}, {"dpi": (72, 72)}):
        buf = io.BytesIO()
        rgb.save(buf, format="PNG", **kw)
        assert not is_prepared(named(buf.getvalue())), kw  # a hash name, but an ancillary chunk
    for mode in ("P", "RGBA", "L"):
        buf = io.BytesIO()
        rgb.convert(mode).save(buf, format="PNG")
        assert not is_prepared(named(buf.getvalue())), mode
    assert not is_prepared(named(data[:-6]))  # truncated IEND
    assert not is_prepared(named(data + b"tail"))
    assert not is_prepared(named(data, where="zz"))  # not under its hash's folder
    assert not is_prepared(tmp_path / "missing" / good.name)
    jpeg = io.BytesIO()
    rgb.save(jpeg, format="JPEG")
    assert not is_prepared(named(jpeg.getvalue()))


def test_legacy_stimuli_are_reprepared_once_with_the_same_pixels(tmp_path: Path) -> None:
    service, sid, folder = _legacy_study(tmp_path)
    before = {st.id: (st.path, _pixels(st.path)) for st, _ in service.stimuli(sid)}
    assert {Path(p).suffix for p, _ in before.values()} == {".png", ".jpg", ".webp"}
    assert not any(is_prepared(p) for p, _ in before.values())
    with service.db.read() as s:
        pairs = s.scalar(select(func.count()).select_from(Pair).where(Pair.study_id == sid))

    done = reprepare_stimuli(service.db, make_config(tmp_path))

    assert done.stimuli == len(before) and not done.problems
    after = {st.id: st for st, _ in service.stimuli(sid)}
    assert set(after) == set(before)
    for i, st in after.items():
        data = Path(st.path).read_bytes()
        assert is_prepared(st.path) and st.sha256 == hashlib.sha256(data).hexdigest()
        _assert_clean(data, Path(st.path).name)
        assert np.array_equal(_pixels(st.path), before[i][1])  # the pixels rated are the same
    assert all(not Path(p).exists() for p, _ in before.values())  # old copies gone from the folder
    assert done.files_removed == len({p for p, _ in before.values()})
    assert {p.suffix for p in folder.rglob("*") if p.is_file()} == {".png"}
    with service.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Pair).where(Pair.study_id == sid)) == pairs
    again = reprepare_stimuli(service.db, make_config(tmp_path))
    assert (again.stimuli, again.files_removed, again.problems) == (0, 0, [])
    service.db.dispose()


def test_unreadable_and_outside_files_are_reported_and_kept(tmp_path: Path) -> None:
    service, sid, folder = _legacy_study(tmp_path)
    stims = [st for st, _ in service.stimuli(sid)]
    broken, outside = stims[0], stims[1]
    Path(broken.path).write_bytes(b"not an image")
    kept = tmp_path / "elsewhere" / Path(outside.path).name
    kept.parent.mkdir()
    shutil.copy(outside.path, kept)
    with service.db.write() as s:
        s.execute(update(Stimulus).where(Stimulus.id == outside.id).values(path=str(kept)))

    done = reprepare_stimuli(service.db, make_config(tmp_path))

    assert len(done.problems) == 1 and broken.path in done.problems[0]
    assert done.stimuli == len(stims) - 1
    after = {st.id: st for st, _ in service.stimuli(sid)}
    assert after[broken.id].path == broken.path and Path(broken.path).exists()  # row and file as they were
    assert is_prepared(after[outside.id].path) and kept.exists()  # outside the folder: never deleted
    service.db.dispose()


def test_the_app_serves_a_legacy_study_clean_after_its_start(tmp_path: Path) -> None:
    service, sid, _ = _legacy_study(tmp_path)
    with serve_study(make_config(tmp_path), service) as url:  # start-up re-prepares
        served = asyncio.run(_session(url, sid, 6))
    assert len(served) == 12
    for u, data in served:
        _assert_clean(data, u.rsplit("/", 1)[-1])
        assert u.startswith("study-stimuli/") and u.endswith(".png")
    service.db.dispose()
