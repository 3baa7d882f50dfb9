"""Shared fixtures for the study tests: a small manifest of real PNG files and a service."""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from db import Database
from study.config import StudyConfig
from study.errors import DuplicateVoteError
from study.importer import StudyOptions, import_manifest
from study.service import StudyService


def write_images_manifest(folder: Path, sources: int = 3, codecs: int = 3, size: int = 24,
                          with_reference: bool = True, seed: int = 0, aigi_sources: int = 0) -> Path:
    """A JSON manifest like bench/ writes: per source, one image per codec, plus metrics."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, conds = [], []
    for s in range(sources):
        ref = folder / f"src{s}.png"
        base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(base).save(ref)
        for c in range(codecs):
            p = folder / f"src{s}_c{c}.png"
            noisy = np.clip(base.astype(int) + rng.normal(0, 10 * (codecs - c), base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(p)
            row = {"source_id": f"src{s}", "codec": f"codec{c}", "target_bpp": 0.01 * (c + 1),
                   "real_bpp": 0.009 * (c + 1), "path": p.name,
                   "metrics": {"psnr": 20.0 + c + float(rng.normal(0, 0.1)), "lpips": 0.5 - 0.1 * c}}
            if with_reference:
                row["reference_path"] = ref.name
            if s >= sources - aigi_sources:  # the last sources are tagged AI-generated
                row["source_kind"] = "aigi"
            rows.append(row)
    for c in range(codecs):
        conds.append({"codec": f"codec{c}", "target_bpp": 0.01 * (c + 1), "metrics": {"FD-VGG16": 50.0 - 5 * c}})
    path = folder / "manifest.json"
    path.write_text(json.dumps({"format": "misc-study-manifest/1", "name": "test study", "stimuli": rows,
                                "conditions": conds}))
    return path


def make_config(tmp: Path, db_url: str | None = None, **kw: object) -> StudyConfig:
    return StudyConfig(db_url=db_url or str(tmp / "study.db"), stimuli_dir=tmp / "stimuli", admin_password="secret",
                       **kw)  # type: ignore[arg-type]


def open_study(tmp: Path, options: StudyOptions | None = None, db_url: str | None = None, **manifest_kw: object
               ) -> tuple[StudyService, int, StudyConfig]:
    config = make_config(tmp, db_url)
    service = StudyService(Database(config.db_url), seed=0)
    sid = import_manifest(service.db, write_images_manifest(tmp / "bench", **manifest_kw), config,
                          options=options or StudyOptions(pairs_per_session=6, golden_every=3))
    service.set_status(sid, "open")
    return service, sid, config


def _race(db_url: str, jobs: list[tuple[str, int]], choice: str, barrier, out) -> None:  # noqa: ANN001
    service = StudyService(Database(db_url, create=False))
    barrier.wait()
    won = 0
    for token, aid in jobs:
        try:
            service.submit_vote(token, aid, choice, 100)
            won += 1
        except DuplicateVoteError:
            pass
    out.put(won)


def race_same_votes(service: StudyService, study_id: int, db_url: str, raters: int, processes: int,
                    threads: int) -> int:
    """``raters`` sessions get one pair each; then ``processes`` processes (answering "left")
    and ``threads`` threads (answering "right") all try to cast those same votes at once.
    Returns how many submissions were accepted in all."""
    jobs = []
    for _ in range(raters):
        tok = service.start_session(study_id)
        view = service.next_pair(tok)
        assert view is not None
        jobs.append((tok, view.assignment_id))
    ctx = mp.get_context("spawn")
    pbarrier, pout = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(db_url, jobs, "left", pbarrier, pout)) for _ in range(processes)]
    for p in procs:
        p.start()
    tout: queue.Queue[int] = queue.Queue()
    tbarrier = threading.Barrier(threads)
    workers = [threading.Thread(target=_race, args=(db_url, jobs, "right", tbarrier, tout)) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    return sum(pout.get(timeout=10) for _ in procs) + sum(tout.get() for _ in workers)


def count_votes(db_url: str) -> int:
    """Votes in the database at ``db_url``, read through a fresh engine (closed afterwards)."""
    from sqlalchemy import func, select

    from db import Vote

    db = Database(db_url, create=False)
    try:
        with db.read() as s:
            return s.scalar(select(func.count(Vote.id))) or 0
    finally:
        db.dispose()
