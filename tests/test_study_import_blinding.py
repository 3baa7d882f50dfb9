"""Blinding: what a rater's browser receives carries pixels and nothing that names a condition.

Stimuli are prepared once at import (metadata-free PNG, opaque content-addressed name,
read-only) and served as they are; the served bytes of every A/B image are scanned here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from study_helpers import make_config, write_images_manifest
from study_http import serve_study

from bench.study_load import StudyClient, images_of, png_chunks
from db import Database
from study.importer import StudyOptions, import_manifest, stimulus_png
from study.service import StudyService

ALLOWED_CHUNKS = {"IHDR", "IDAT", "IEND"}
LEAKS = ("codec", "bpp", "misc-encoder", "jpeg", "src0", "src1", "reference", "degraded")


def _tag_images(manifest: Path) -> None:
    """Give every image of the manifest the metadata a real encoder leaves behind."""
    data = json.loads(manifest.read_text())
    for row in data["stimuli"]:
        for key in ("path", "reference_path"):
            p = manifest.parent / row[key]
            with Image.open(p) as im:
                im.load()
                info = PngImagePlugin.PngInfo()
                info.add_text("Comment", f"codec={row['codec']} bpp={row['target_bpp']}")
                info.add_text("Software", "misc-encoder")
                exif = Image.Exif()
                exif[0x010E] = f"codec={row['codec']}"  # ImageDescription
                im.save(p, pnginfo=info, exif=exif.tobytes(), icc_profile=b"\0" * 128)


def _assert_clean(data: bytes, name: str) -> None:
    assert set(png_chunks(data)) <= ALLOWED_CHUNKS, (name, png_chunks(data))
    lowered = data.lower()
    for word in LEAKS:
        assert word.encode() not in lowered, (name, word)
        assert word not in name.lower(), (name, word)


def test_import_stores_metadata_free_content_addressed_read_only_files(tmp_path: Path) -> None:
    manifest = write_images_manifest(tmp_path / "bench")
    _tag_images(manifest)
    with Image.open(manifest.parent / "src0_c0.png") as im:  # the inputs really carry metadata
        assert "Comment" in im.info and "icc_profile" in im.info
    config = make_config(tmp_path)
    db = Database(config.db_url)
    sid = import_manifest(db, manifest, config, options=StudyOptions(golden_every=3))
    stims = [st for st, _ in StudyService(db).stimuli(sid)]
    assert {st.role for st in stims} == {"test", "reference", "degraded"}
    for st in stims:
        path = Path(st.path)
        data = path.read_bytes()
        _assert_clean(data, path.name)
        assert path.name == f"{hashlib.sha256(data).hexdigest()}.png" and st.sha256 in path.name
        assert not os.access(path, os.W_OK) or os.geteuid() == 0  # root may write anyway
        assert path.stat().st_mode & 0o222 == 0
    # Re-importing the same images never rewrites a stored (possibly being served) file.
    before = {st.path: (Path(st.path).stat().st_ino, Path(st.path).stat().st_mtime_ns) for st in stims}
    sid2 = import_manifest(db, manifest, config, name="again", options=StudyOptions(golden_every=3))
    again = {st.path for st, _ in StudyService(db).stimuli(sid2)}
    assert again == set(before)
    assert all((Path(p).stat().st_ino, Path(p).stat().st_mtime_ns) == v for p, v in before.items())
    db.dispose()


def test_stimulus_png_is_pixels_only_and_deterministic() -> None:
    rgba = Image.fromarray(np.random.default_rng(0).integers(0, 255, (9, 7, 4), dtype=np.uint8), "RGBA")
    rgba.info["Comment"] = "codec=x"
    a, b = stimulus_png(rgba), stimulus_png(rgba.copy())
    assert a == b and set(png_chunks(a)) == ALLOWED_CHUNKS
    with Image.open(__import__("io").BytesIO(a)) as im:
        assert im.mode == "RGB" and im.size == (7, 9) and not im.info


async def _session(url: str, sid: int, votes: int) -> list[tuple[str, bytes]]:
    served = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        client = StudyClient(http)
        out = await client.start(sid)
        for k in range(votes):
            urls = images_of(out)
            if not urls:
                break
            served += [(u, (await client.fetch(u))[0]) for u in urls]
            out = await client.vote(('left', 'right', 'tie')[k % 3], 1700000000000)
    return served


def test_served_images_carry_no_metadata_and_no_condition(tmp_path: Path) -> None:
    """The bytes and URLs a rater's browser gets for A and B, over HTTP from the running app."""
    manifest = write_images_manifest(tmp_path / "bench")
    _tag_images(manifest)
    config = make_config(tmp_path)
    service = StudyService(Database(config.db_url), seed=0)
    sid = import_manifest(service.db, manifest, config, options=StudyOptions(pairs_per_session=6, golden_every=3))
    service.set_status(sid, "open")
    with serve_study(config, service) as url:
        served = asyncio.run(_session(url, sid, 6))
    assert len(served) == 12  # 6 pairs, golden ones included
    stored = {Path(st.path).name: Path(st.path).read_bytes() for st, _ in service.stimuli(sid)}
    for url, data in served:
        _assert_clean(data, url.rsplit("/", 1)[-1])
        assert url.startswith("study-stimuli/") and url.rsplit("/", 1)[-1] in stored  # the hash alone, no path
        assert stored[url.rsplit("/", 1)[-1]] == data  # served as stored: not re-encoded per vote
    service.db.dispose()


@pytest.mark.parametrize("inside", [True, False])
def test_database_inside_the_stimuli_folder_is_refused(tmp_path: Path, inside: bool) -> None:
    import gradio as gr

    from study.errors import StudyError
    from study.ui import serve_stimuli

    config = make_config(tmp_path, db_url=str(tmp_path / ("stimuli" if inside else "other") / "study.db"))
    with gr.Blocks():
        if inside:
            with pytest.raises(StudyError, match="must not be inside the stimuli folder"):
                serve_stimuli(config)
        else:
            serve_stimuli(config)
