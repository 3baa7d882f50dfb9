"""Issue 14: the study keeps each source's kind (natural | aigi) and splits its
per-image correlations by it, so MISC's observation (metrics agree with people less on
AI-generated images) can be checked on a study's own votes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Stimulus
from study.analysis import analyze
from study.errors import ManifestError
from study.importer import StudyOptions
from study.manifest import load_manifest
from tests.study_helpers import open_study, write_images_manifest


def test_manifest_reads_the_kind_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    path = write_images_manifest(tmp_path / "m", sources=3, aigi_sources=1)
    kinds = [r.source_kind for r in load_manifest(path).stimuli]
    assert kinds.count("aigi") == 3 and kinds.count("natural") == 6
    raw = json.loads(path.read_text())
    raw["stimuli"][0]["source_kind"] = "synthetic"
    path.write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="source_kind must be one of natural, aigi"):
        load_manifest(path)


def test_import_stores_the_kind_and_analysis_splits_correlations(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path, StudyOptions(pairs_per_session=9, golden_every=0),
                                 sources=4, aigi_sources=2)
    with service.db.read() as s:
        stored = {st.source_id: st.source_kind for st in s.scalars(select(Stimulus).where(Stimulus.role == "test"))}
    assert stored == {"src0": "natural", "src1": "natural", "src2": "aigi", "src3": "aigi"}
    for _ in range(8):
        tok = service.start_session(sid)
        while (v := service.next_pair(tok)) is not None:
            service.submit_vote(tok, v.assignment_id, "left", 500)
    a = analyze(service, sid, bootstrap_samples=20, correlation_samples=20)
    levels = {(c.metric, c.level): c.n for c in a.correlations}
    assert {"stimulus", "stimulus/natural", "stimulus/aigi"} <= {lvl for _, lvl in levels}
    # Each kind's correlation uses that kind's test stimuli only: 2 sources x 3 codecs.
    assert levels[("psnr", "stimulus")] == 12
    assert levels[("psnr", "stimulus/natural")] == 6 and levels[("psnr", "stimulus/aigi")] == 6


def test_a_study_of_one_kind_has_no_split(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path, StudyOptions(pairs_per_session=9, golden_every=0), sources=3)
    for _ in range(6):
        tok = service.start_session(sid)
        while (v := service.next_pair(tok)) is not None:
            service.submit_vote(tok, v.assignment_id, "left", 500)
    a = analyze(service, sid, bootstrap_samples=20, correlation_samples=20)
    assert {c.level for c in a.correlations} <= {"stimulus", "condition"}
