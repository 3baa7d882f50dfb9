"""Shared fixtures for the study tests: a small manifest of real PNG files and a service."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from db import Database
from study.config import StudyConfig
from study.importer import StudyOptions, import_manifest
from study.service import StudyService


def write_images_manifest(folder: Path, sources: int = 3, codecs: int = 3, size: int = 24,
                          with_reference: bool = True, seed: int = 0) -> Path:
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
