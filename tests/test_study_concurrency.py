"""Many threads and several processes voting at once: every accepted vote stored exactly
once, every replay refused, nothing lost, no "database is locked"."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from db import Vote
from study.bench_votes import run_bench
from study.importer import StudyOptions
from tests.study_helpers import open_study, race_same_votes


def test_threads_and_processes_vote_at_once(tmp_path: Path) -> None:
    r = run_bench(tmp_path / "p", processes=3, threads=3, sessions=1, pairs_per_session=6, replay_every=2)
    assert r.unexpected_errors == 0
    assert r.votes == 3 * 3 * 6 == r.stored_votes
    assert r.lost == 0 and r.duplicated == 0
    assert r.replays_refused == 3 * 3 * 3


def test_many_threads_one_process(tmp_path: Path) -> None:
    r = run_bench(tmp_path / "t", processes=1, threads=12, sessions=1, pairs_per_session=5, replay_every=1)
    assert r.unexpected_errors == 0
    assert r.votes == 60 == r.stored_votes and r.replays_refused == 60
    assert r.lost == 0 and r.duplicated == 0


def test_same_votes_raced_by_threads_and_processes_count_once(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=4, golden_every=0))
    # 3 processes and 6 threads all try to cast the same 5 votes.
    wins = race_same_votes(service, sid, config.db_url, raters=5, processes=3, threads=6)
    assert wins == 5
    with service.db.read() as s:
        assert s.scalar(select(func.count(Vote.id)).where(Vote.study_id == sid)) == 5
