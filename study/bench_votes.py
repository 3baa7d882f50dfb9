"""Votes per second on the real intake path, with many threads in several processes.

    one study (tiny images) ─► P processes × T threads, each a rater loop:
        start_session ─► (next_pair ─► submit_vote [─► replay the same vote: must be refused])*
    ─► check: every accepted vote is in the database exactly once with its choice;
       every replay was refused; nothing else is there

``python -m study.bench_votes --processes 4 --threads 8`` prints a JSON line. The rate
counts the whole rater loop (issuing the next pair is a write too), on SQLite unless
``--db`` names another SQLAlchemy URL.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select

from db import Database, Vote
from study.config import StudyConfig
from study.errors import DuplicateVoteError, StudyError
from study.importer import StudyOptions, import_manifest
from study.service import StudyService
from study.simulate import SimulationSpec, write_manifest


@dataclass
class WorkerResult:
    accepted: list[tuple[int, str]]  # (vote id, choice)
    replays_refused: int
    unexpected_errors: list[str]
    seconds: float
    cpu_seconds: float = 0.0  # process CPU time while voting (all threads)


@dataclass
class BenchResult:
    processes: int
    threads: int
    votes: int
    replays_refused: int
    seconds: float
    votes_per_second: float
    stored_votes: int
    lost: int
    duplicated: int
    unexpected_errors: int
    database: str
    cpu_seconds: float  # summed over processes: votes / cpu_seconds is the rate per busy core
    load_average: float  # 1-minute load of the machine at the end (others' work slows the rate)


def _rater_loop(service: StudyService, study_id: int, sessions: int, replay_every: int, seed: int,
                out: WorkerResult) -> None:
    rng = random.Random(seed)
    for _ in range(sessions):
        try:
            token = service.start_session(study_id)
            n = 0
            while (view := service.next_pair(token)) is not None:
                choice = rng.choice(("left", "right", "tie"))
                receipt = service.submit_vote(token, view.assignment_id, choice, rng.randint(300, 3000))
                out.accepted.append((receipt.vote_id, choice))
                n += 1
                if replay_every and n % replay_every == 0:
                    try:
                        service.submit_vote(token, view.assignment_id, "left", 100)
                        out.unexpected_errors.append("a replayed vote was accepted")
                    except DuplicateVoteError:
                        out.replays_refused += 1
        except StudyError as e:  # anything else is a failure of the intake
            out.unexpected_errors.append(f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - e.g. "database is locked" must be counted, not hidden
            out.unexpected_errors.append(f"{type(e).__name__}: {e}")


def worker(db_url: str, study_id: int, threads: int, sessions: int, replay_every: int, seed: int,
           start_at: float) -> WorkerResult:
    """One process: its own engine, ``threads`` raters voting at once."""
    service = StudyService(Database(db_url, create=False), seed=seed)
    results = [WorkerResult([], 0, [], 0.0) for _ in range(threads)]
    ts = [threading.Thread(target=_rater_loop, args=(service, study_id, sessions, replay_every, seed * 1000 + i,
                                                     results[i])) for i in range(threads)]
    while time.time() < start_at:
        time.sleep(0.005)
    t0, c0 = time.perf_counter(), time.process_time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total = WorkerResult([], 0, [], time.perf_counter() - t0, time.process_time() - c0)
    for r in results:
        total.accepted += r.accepted
        total.replays_refused += r.replays_refused
        total.unexpected_errors += r.unexpected_errors
    service.db.dispose()
    return total


def _worker_entry(args: tuple) -> WorkerResult:  # picklable for the process pool
    return worker(*args)


def run_bench(workdir: Path, processes: int = 4, threads: int = 8, sessions: int = 1, pairs_per_session: int = 30,
              replay_every: int = 5, db_url: str | None = None, scheduler: str = "active") -> BenchResult:
    config = StudyConfig(db_url=db_url or str(workdir / "bench.db"), stimuli_dir=workdir / "stimuli")
    db = Database(config.db_url)
    service = StudyService(db)
    manifest, _, _ = write_manifest(workdir / "m", SimulationSpec(sources=12, conditions=8))
    study_id = import_manifest(db, manifest, config, name=f"bench {time.time()}", options=StudyOptions(
        scheduler=scheduler, pairs_per_session=pairs_per_session, golden_every=10))
    service.set_status(study_id, "open")
    start_at = time.time() + 1.0 + 0.5 * processes
    jobs = [(config.db_url, study_id, threads, sessions, replay_every, p + 1, start_at) for p in range(processes)]
    if processes == 1:
        results = [worker(*jobs[0])]
    else:
        with mp.get_context("spawn").Pool(processes) as pool:
            results = pool.map(_worker_entry, jobs)
    accepted = [a for r in results for a in r.accepted]
    seconds = max(r.seconds for r in results)
    with db.read() as s:
        stored = dict(s.execute(select(Vote.id, Vote.choice).where(Vote.study_id == study_id)).all())
    ids = [v for v, _ in accepted]
    lost = sum(1 for v, c in accepted if stored.get(v) != c)
    duplicated = len(ids) - len(set(ids)) + max(0, len(stored) - len(set(ids)))
    errors = [e for r in results for e in r.unexpected_errors]
    db.dispose()
    return BenchResult(processes, threads, len(accepted), sum(r.replays_refused for r in results), seconds,
                       len(accepted) / seconds if seconds > 0 else 0.0, len(stored), lost, duplicated, len(errors),
                       "sqlite" if config.db_url.startswith(("sqlite", "/", ".")) or "://" not in config.db_url
                       else config.db_url.split(":")[0], sum(r.cpu_seconds for r in results),
                       os.getloadavg()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=1, help="rater sessions per thread")
    ap.add_argument("--pairs", type=int, default=30, help="pairs per session")
    ap.add_argument("--scheduler", default="active", choices=["active", "balanced"])
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        r = run_bench(Path(d), args.processes, args.threads, args.sessions, args.pairs, db_url=args.db,
                      scheduler=args.scheduler)
    print(json.dumps(asdict(r)))


if __name__ == "__main__":
    main()
