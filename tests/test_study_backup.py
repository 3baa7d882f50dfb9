"""Votes survive a restart: snapshots (consistent while votes are written), restore, kill -9.

The Hugging Face Hub cannot be reached here: every upload and download goes to
``study_hub.LocalFolderHub``, a local folder that answers the same calls as ``HfApi``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from study_helpers import count_votes, open_study
from study_hub import LocalFolderHub

from db import Database
from study.backup import SNAPSHOT_NAME, restore_at_start, snapshot, snapshot_counts, start_backup
from study.config import StudyConfig, study_dir
from study.importer import StudyOptions
from study.service import StudyService

REPO = "someone/misc-study-votes"
TESTS = Path(__file__).resolve().parent


def _vote_forever(service: StudyService, sid: int, stop: threading.Event, acked: list[int]) -> None:
    while not stop.is_set():
        tok = service.start_session(sid)
        while not stop.is_set() and (view := service.next_pair(tok)) is not None:
            service.submit_vote(tok, view.assignment_id, "right", 100)
            acked[0] += 1


def test_snapshots_are_consistent_while_votes_are_written(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path, options=StudyOptions(pairs_per_session=6, golden_every=0))
    stop, acked = threading.Event(), [0]
    writers = [threading.Thread(target=_vote_forever, args=(service, sid, stop, acked)) for _ in range(2)]
    for w in writers:
        w.start()
    seen = []
    try:
        for k in range(12):
            time.sleep(0.05)
            before = acked[0]
            path = snapshot(service.db, tmp_path / "snaps" / f"{k}.db")
            after = acked[0]
            counts = snapshot_counts(path)  # integrity_check "ok" and no orphan rows, or it raises
            assert before <= counts["vote"] <= after + 2  # all acknowledged before it; at most in-flight ones
            assert not Path(str(path) + "-wal").exists()
            seen.append(counts["vote"])
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert seen == sorted(seen) and seen[-1] > seen[0]  # votes kept arriving during the snapshots
    final = snapshot_counts(snapshot(service.db, tmp_path / "final.db"))
    assert final["vote"] == acked[0] == count_votes(service.db.url)
    service.db.dispose()


def test_restore_into_an_empty_database_then_voting_goes_on(tmp_path: Path) -> None:
    hub = LocalFolderHub(tmp_path / "hub")
    service, sid, config = open_study(tmp_path / "a", options=StudyOptions(pairs_per_session=6, golden_every=0))
    tok = service.start_session(sid)
    for _ in range(3):
        view = service.next_pair(tok)
        assert view is not None
        service.submit_vote(tok, view.assignment_id, "left", 100)
    cfg_a = StudyConfig(db_url=config.db_url, stimuli_dir=config.stimuli_dir, backup_repo=REPO, backup_every_min=60)
    scheduler = start_backup(cfg_a, service.db, api=hub)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # start_backup set an exit handler: not in the test runner
    assert scheduler is not None
    scheduler.trigger().result(timeout=60)  # a push now (the one at start is skipped if unchanged)
    scheduler.stop()
    assert scheduler.pushed == 1 and len(hub.commits(REPO)) == 1
    service.db.dispose()

    # A fresh Space: empty disk, same repo.
    fresh = StudyConfig(db_url=str(tmp_path / "b" / "study.db"), stimuli_dir=config.stimuli_dir, backup_repo=REPO)
    assert restore_at_start(fresh, api=hub) == 3
    again = StudyService(Database(fresh.db_url), seed=0)
    view = again.next_pair(tok)  # the same rater resumes on the restored database
    assert view is not None and view.position == 3
    again.submit_vote(tok, view.assignment_id, "tie", 100)
    other = again.start_session(sid)
    first = again.next_pair(other)
    assert first is not None
    again.submit_vote(other, first.assignment_id, "right", 100)
    assert count_votes(fresh.db_url) == 5
    # A database that holds a study is never replaced.
    assert restore_at_start(fresh, api=hub) is None
    assert count_votes(fresh.db_url) == 5
    again.db.dispose()


def test_damaged_or_missing_snapshots_are_not_restored(tmp_path: Path) -> None:
    hub = LocalFolderHub(tmp_path / "hub")
    cfg = StudyConfig(db_url=str(tmp_path / "s.db"), backup_repo=REPO)
    assert restore_at_start(cfg, api=hub) is None  # no repo / no snapshot yet: start empty
    hub.create_repo(REPO, exist_ok=True)
    (hub.repo(REPO) / SNAPSHOT_NAME).write_bytes(b"SQLite format 3\0" + b"\x07" * 5000)
    assert restore_at_start(cfg, api=hub) is None
    assert not Path(cfg.db_url).exists()


def test_study_dir_prefers_the_persistent_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISC_STUDY_DIR", raising=False)
    assert study_dir(tmp_path) == tmp_path / "misc-study"
    assert study_dir(tmp_path / "absent") == Path("data")
    monkeypatch.setenv("MISC_STUDY_DIR", str(tmp_path / "mine"))
    assert study_dir(tmp_path) == tmp_path / "mine"
    monkeypatch.setenv("MISC_STUDY_BACKUP_REPO", REPO)
    c = StudyConfig.from_env()
    assert c.db_url == str(tmp_path / "mine" / "study.db") and c.backup_repo == REPO


def _run_worker(tmp_path: Path, every_min: float, until_acks: int, until_commits: int):  # noqa: ANN202
    service, sid, config = open_study(tmp_path, options=StudyOptions(pairs_per_session=6, golden_every=0))
    service.db.dispose()
    hub_root = tmp_path / "hub"
    proc = subprocess.Popen([sys.executable, str(TESTS / "study_hub.py"), config.db_url, str(hub_root), REPO,
                             str(every_min), str(sid)], stdout=subprocess.PIPE, text=True,
                            cwd=TESTS.parent, env=dict(os.environ, PYTHONPATH=f"{TESTS.parent}:{TESTS}"))
    hub = LocalFolderHub(hub_root)
    acked = 0
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ack "):
            acked = int(line.split()[1])
        commits = len(hub.commits(REPO)) if hub.repo(REPO).is_dir() else 0
        if (acked >= until_acks and commits >= until_commits) or time.monotonic() > deadline:
            break
    return proc, hub, config, acked


def _drain(proc: subprocess.Popen, acked: int) -> int:
    assert proc.stdout is not None
    for line in proc.stdout:  # acknowledgements printed before the process died
        if line.startswith("ack "):
            acked = int(line.split()[1])
    return acked


def test_kill_9_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    proc, hub, config, acked = _run_worker(tmp_path, every_min=0.005, until_acks=150, until_commits=3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    acked = _drain(proc, acked)
    assert acked >= 150
    # The disk survived (persistent volume): every acknowledged vote is in the file.
    present = count_votes(config.db_url)
    assert acked <= present <= acked + 1  # +1: a vote committed whose "ack" line was not yet written
    # The disk was lost: restore from the last snapshot pushed before the kill.
    fresh = StudyConfig(db_url=str(tmp_path / "fresh" / "study.db"), backup_repo=REPO)
    restored = restore_at_start(fresh, api=hub)
    assert restored is not None and 0 < restored <= present
    print(f"kill -9 figure: acknowledged {acked}, present on disk {present}, in the last snapshot {restored} "
          f"({len(hub.commits(REPO))} snapshots pushed)")


def test_sigterm_pushes_a_final_snapshot_with_every_acknowledged_vote(tmp_path: Path) -> None:
    proc, hub, config, acked = _run_worker(tmp_path, every_min=60, until_acks=60, until_commits=1)
    proc.send_signal(signal.SIGTERM)  # what a Space restart sends
    assert proc.wait(timeout=60) == 0
    acked = _drain(proc, acked)
    last = hub.commits(REPO)[-1] / SNAPSHOT_NAME
    in_snapshot = snapshot_counts(last)["vote"]
    assert acked <= in_snapshot <= acked + 1 and in_snapshot == count_votes(config.db_url)
    assert len(hub.commits(REPO)) == 2  # the one at start and the final one
