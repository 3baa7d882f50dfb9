"""Bad input at every edge: a clear typed error, and nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import Assignment, Database, Pair, Rater, Stimulus, Study, Vote
from study.config import StudyConfig
from study.errors import (
    DuplicateVoteError,
    ManifestError,
    NotFoundError,
    StudyClosedError,
    UploadError,
    VoteError,
)
from study.importer import StudyOptions, import_manifest, import_upload
from study.manifest import load_manifest
from study.service import StudyService
from tests.study_helpers import make_config, open_study, write_images_manifest


def _counts(db: Database) -> tuple[int, ...]:
    with db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) or 0
                     for m in (Study, Stimulus, Pair, Rater, Assignment, Vote))


def _rewrite(path: Path, fn) -> Path:  # noqa: ANN001
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
    return path


def test_manifest_is_read_with_metrics_and_conditions(tmp_path: Path) -> None:
    m = load_manifest(write_images_manifest(tmp_path))
    assert len(m.stimuli) == 9 and len(m.conditions) == 3
    assert m.stimuli[0].metrics["psnr"] > 0 and m.stimuli[0].reference_path is not None


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="other/2"), "unknown manifest format"),
    (lambda d: d["stimuli"][0].pop("codec"), "missing 'codec'"),
    (lambda d: d["stimuli"][1].update(target_bpp=-1), "must be > 0"),
    (lambda d: d["stimuli"][1].update(target_bpp="abc"), "must be a number"),
    (lambda d: d["stimuli"][2]["metrics"].update(psnr="high"), "must be a number"),
    (lambda d: d["stimuli"].append(dict(d["stimuli"][0])), "duplicate stimulus"),
    (lambda d: d["stimuli"][0].update(path="nope.png"), "not found"),
    (lambda d: d["stimuli"][0].update(reference_path="src1.png"), "disagree on reference_path"),
    (lambda d: d.update(stimuli=[]), "no stimuli"),
    (lambda d: d["conditions"].append({"codec": "zz", "target_bpp": 1, "metrics": {}}), "has no stimuli"),
])
def test_malformed_manifest_stores_nothing(tmp_path: Path, mutate, message: str) -> None:  # noqa: ANN001
    config = make_config(tmp_path)
    db = Database(config.db_url)
    path = _rewrite(write_images_manifest(tmp_path / "bench"), mutate)
    before = _counts(db)
    with pytest.raises(ManifestError, match=message):
        import_manifest(db, path, config)
    assert _counts(db) == before


def test_not_json_and_csv_errors(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    db = Database(config.db_url)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        import_manifest(db, tmp_path / "m.json", config)
    (tmp_path / "m.csv").write_text("source_id,codec,path\na,b,c\n")
    with pytest.raises(ManifestError, match="target_bpp"):
        import_manifest(db, tmp_path / "m.csv", config)
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ManifestError, match=".json or .csv"):
        import_manifest(db, tmp_path / "m.txt", config)
    assert _counts(db) == (0, 0, 0, 0, 0, 0)


def _csv_upload(folder: Path) -> tuple[Path, list[Path]]:
    write_images_manifest(folder, sources=2, codecs=2)
    lines = ["source_id,codec,target_bpp,real_bpp,reference_path,path,psnr,metric:lpips"]
    for s in range(2):
        for c in range(2):
            lines.append(f"src{s},codec{c},{0.01 * (c + 1)},0.009,src{s}.png,some/dir/src{s}_c{c}.png,{20 + c},")
    csv_path = folder / "upload.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path, sorted(folder.glob("src*.png"))


def test_upload_creates_study_and_copies_images(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    db = Database(config.db_url)
    csv_path, images = _csv_upload(tmp_path / "up")
    sid = import_upload(db, csv_path, images, config, "uploaded", StudyOptions(golden_every=4))
    with db.read() as s:
        stims = s.scalars(select(Stimulus).where(Stimulus.study_id == sid)).all()
        assert len(stims) == 4 + 4  # 4 test + reference and degraded per source
        assert all(Path(st.path).is_file() and str(config.stimuli_dir.resolve()) in st.path for st in stims)
        test = [st for st in stims if st.role == "test"]
        assert all(st.metrics == {"psnr": pytest.approx(st.metrics["psnr"])} for st in test)  # empty lpips skipped
        assert s.scalar(select(func.count(Pair.id)).where(Pair.is_golden)) == 2


@pytest.mark.parametrize("case", ["oversized", "not_image", "too_many", "missing_image", "bad_csv", "dup_name",
                                  "big_csv"])
def test_bad_uploads_store_nothing(tmp_path: Path, case: str) -> None:
    config = make_config(tmp_path)
    db = Database(config.db_url)
    csv_path, images = _csv_upload(tmp_path / "up")
    if case == "oversized":
        config.max_image_bytes = 100
        err, msg = UploadError, "above the"
    elif case == "not_image":
        bad = tmp_path / "up" / "evil.png"
        bad.write_bytes(b"<?php not an image ?>" * 10)
        images.append(bad)
        err, msg = UploadError, "not a readable image"
    elif case == "too_many":
        config.max_images = 2
        err, msg = UploadError, "the limit is 2"
    elif case == "missing_image":
        images = [p for p in images if p.name != "src1_c1.png"]
        err, msg = ManifestError, "was not uploaded"
    elif case == "bad_csv":
        csv_path.write_text("source_id,codec,target_bpp,path\nsrc0,codec0,0.01,src0_c0.png,extra,fields\n")
        err, msg = ManifestError, "more fields"
    elif case == "dup_name":
        other = tmp_path / "other"
        other.mkdir()
        (other / images[0].name).write_bytes(images[0].read_bytes())
        images.append(other / images[0].name)
        err, msg = UploadError, "two uploaded images"
    else:
        config.max_csv_bytes = 10
        err, msg = UploadError, "larger than"
    with pytest.raises(err, match=msg):
        import_upload(db, csv_path, images, config, "x")
    assert _counts(db) == (0, 0, 0, 0, 0, 0)


def test_bad_votes_are_refused_and_store_nothing(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    tok1, tok2 = service.start_session(sid), service.start_session(sid)
    v1, v2 = service.next_pair(tok1), service.next_pair(tok2)
    assert v1 is not None and v2 is not None
    service.submit_vote(tok1, v1.assignment_id, "left", 1200, 1764120000000)
    before = _counts(service.db)
    bad = [
        ((tok1, v1.assignment_id, "right", 900), DuplicateVoteError, "already answered"),
        ((tok1, 999_999, "left", 900), VoteError, "does not exist"),
        ((tok1, v2.assignment_id, "left", 900), VoteError, "does not exist for this rater"),  # someone else's
        (("f" * 32, v2.assignment_id, "left", 900), VoteError, "unknown rater"),  # tampered token
        (("", v2.assignment_id, "left", 900), VoteError, "malformed rater"),
        ((tok2, v2.assignment_id, "sideways", 900), VoteError, "choice must be"),
        ((tok2, v2.assignment_id, "left", -5), VoteError, "out of range"),
        ((tok2, v2.assignment_id, "left", float("nan")), VoteError, "milliseconds"),
        ((tok2, "1; DROP TABLE vote", "left", 900), VoteError, "integer"),
    ]
    for args, err, msg in bad:
        with pytest.raises(err, match=msg):
            service.submit_vote(*args)
    with pytest.raises(VoteError, match="client time"):
        service.submit_vote(tok2, v2.assignment_id, "left", 900, "yesterday")
    assert _counts(service.db) == before
    with pytest.raises(NotFoundError):
        service.start_session(12345)


def test_closed_study_refuses_votes_and_sessions(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    tok = service.start_session(sid)
    view = service.next_pair(tok)
    assert view is not None
    service.set_status(sid, "closed")
    before = _counts(service.db)
    with pytest.raises(StudyClosedError):
        service.submit_vote(tok, view.assignment_id, "left", 500)
    with pytest.raises(StudyClosedError):
        service.start_session(sid)
    with pytest.raises(StudyClosedError):
        service.next_pair(tok)
    assert _counts(service.db) == before
    service.set_status(sid, "open")
    assert service.submit_vote(tok, view.assignment_id, "left", 500).done == 1


def test_rater_never_sees_a_pair_twice_and_golden_pairs_are_mixed_in(tmp_path: Path) -> None:
    from study.importer import StudyOptions
    service, sid, _ = open_study(tmp_path / "a", StudyOptions(pairs_per_session=100, golden_every=4,
                                                              scheduler="balanced"))
    tok = service.start_session(sid)
    seen = []
    while (v := service.next_pair(tok)) is not None:
        assert service.next_pair(tok) == v  # an unanswered pair is shown again, not a new one
        seen.append(v.assignment_id)
        service.submit_vote(tok, v.assignment_id, "tie", 100)
    with service.db.read() as s:
        pairs = s.scalars(select(Assignment.pair_id).join(Rater).where(Rater.token == tok)).all()
        total = s.scalar(select(func.count(Pair.id)).where(Pair.study_id == sid))
        golden = s.scalar(select(func.count(Vote.id)).join(Pair, Pair.id == Vote.pair_id).where(Pair.is_golden))
    assert len(pairs) == len(set(pairs)) == total  # every pair once, then the session ends
    assert golden == 3


def test_config_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MISC_STUDY_DB", str(tmp_path / "x.db"))
    monkeypatch.delenv("MISC_ADMIN_PASSWORD", raising=False)
    c = StudyConfig.from_env()
    assert c.db_url.endswith("x.db") and c.admin_password is None
    monkeypatch.setenv("MISC_ADMIN_PASSWORD", "pw")
    assert StudyConfig.from_env().admin_password == "pw"
    assert isinstance(StudyService(Database(c.db_url)), StudyService)


def test_bench_manifest_extra_keys_are_ignored(tmp_path: Path) -> None:
    """bench/run.py adds id, bytes, source_path and a references list: all accepted."""
    def extra(d: dict) -> None:
        for i, row in enumerate(d["stimuli"]):
            row.update(id=f"s{i}", bytes=123, source_path="/elsewhere/x.png")
        d["references"] = [{"id": "src0/reference", "source_id": "src0", "codec": "reference", "path": "src0.png"}]

    config = make_config(tmp_path)
    db = Database(config.db_url)
    sid = import_manifest(db, _rewrite(write_images_manifest(tmp_path / "bench"), extra), config)
    assert _counts(db)[1] == 9 + 6  # 9 test stimuli, reference + degraded for 3 sources
    assert sid == 1
