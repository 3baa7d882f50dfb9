"""Many threads and several processes voting at once: every accepted vote stored exactly
once, every replay refused, nothing lost, no "database is locked"."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

from sqlalchemy import func, select

from db import Database, Vote
from study.bench_votes import run_bench
from study.errors import DuplicateVoteError
from study.importer import StudyOptions
from study.service import StudyService
from tests.study_helpers import open_study


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


def test_same_votes_raced_by_threads_and_processes_count_once(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=4, golden_every=0))
    jobs = []
    for _ in range(5):
        tok = service.start_session(sid)
        view = service.next_pair(tok)
        assert view is not None
        jobs.append((tok, view.assignment_id))
    # 3 processes and 6 threads all try to cast the same 5 votes.
    ctx = mp.get_context("spawn")
    pbarrier, pout = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(config.db_url, jobs, "left", pbarrier, pout)) for _ in range(3)]
    for p in procs:
        p.start()
    import queue
    tout: queue.Queue[int] = queue.Queue()
    tbarrier = threading.Barrier(6)
    threads = [threading.Thread(target=_race, args=(config.db_url, jobs, "right", tbarrier, tout)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    wins = sum(pout.get(timeout=10) for _ in procs) + sum(tout.get() for _ in threads)
    assert wins == 5
    with service.db.read() as s:
        assert s.scalar(select(func.count(Vote.id)).where(Vote.study_id == sid)) == 5
