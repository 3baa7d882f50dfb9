"""Votes that survive a restart: consistent snapshots of the database pushed to a Hub dataset repo.

    SQLite (WAL, live) ─► SQLite's online backup API: one consistent copy, writers go on
        ─► <study dir>/backup/study.db (written aside, renamed into place)
        ─► huggingface_hub's CommitScheduler, every N minutes (only when it changed)
        ─► the dataset repo named by MISC_STUDY_BACKUP_REPO
    at start:  the database is missing or holds no study ─► the repo's latest study.db
               ─► integrity check ─► put in place before the engine opens it
    shutdown:  atexit (and SIGTERM, as a Space restart sends it) ─► one last snapshot and push

On a Space the database itself goes on the persistent volume when there is one
(``study.config.study_dir``); the snapshots are what is left when there is none, or when
the volume is lost. A kill -9 loses nothing that was acknowledged from the file on disk
(WAL, each vote committed before its answer), but only what the last snapshot holds
survives the loss of the disk: the schedule bounds that window.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from huggingface_hub import CommitScheduler
from sqlalchemy.engine import make_url

from db import Database
from study.config import StudyConfig

log = logging.getLogger("misc.study")
SNAPSHOT_NAME = "study.db"


def sqlite_file(db_url: str) -> Path | None:
    """The file of a SQLite URL or plain path; None for other databases and in-memory ones."""
    if "://" not in db_url:
        return Path(db_url).expanduser().resolve()
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database).resolve()


def snapshot(db: Database, dest: Path) -> Path:
    """A consistent copy of the live database at ``dest`` (SQLite's online backup API).

    The copy is taken in one step under a read transaction, so it is the database as of
    one commit, while other connections keep writing; it is written aside and renamed
    into place, so ``dest`` is always a whole snapshot.
    """
    if not db.is_sqlite:
        raise ValueError("snapshots are for SQLite; back up other databases with their own tools")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".snapshot-", suffix=".db")
    os.close(fd)
    try:
        raw = db.engine.raw_connection()
        try:
            target = sqlite3.connect(tmp)
            try:
                raw.driver_connection.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                target.close()
        finally:
            raw.close()
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def snapshot_counts(path: Path) -> dict[str, int]:
    """Rows per table of a snapshot after SQLite's integrity check; ValueError if it is damaged."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check = con.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise ValueError(f"snapshot {path.name} is damaged: {check}")
        if con.execute("PRAGMA foreign_key_check").fetchall():
            raise ValueError(f"snapshot {path.name} has rows whose parents are missing")
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # noqa: S608 - table names of the schema
                for t in ("study", "rater", "assignment", "vote")}
    except sqlite3.DatabaseError as e:
        raise ValueError(f"snapshot {path.name} is not a study database: {e}") from None
    finally:
        con.close()


def has_studies(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return bool(con.execute("SELECT count(*) FROM study").fetchone()[0])
    except sqlite3.DatabaseError:
        return False
    finally:
        con.close()


def restore_at_start(config: StudyConfig, api: Any = None) -> int | None:
    """Before the engine opens it: an empty or missing database is replaced by the repo's
    latest snapshot. Returns the votes restored, or None when nothing was restored."""
    path = sqlite_file(config.db_url)
    if not config.backup_repo or path is None or has_studies(path):
        return None
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    with tempfile.TemporaryDirectory() as d:
        try:
            local = Path(api.hf_hub_download(repo_id=config.backup_repo, filename=SNAPSHOT_NAME,
                                             repo_type="dataset", local_dir=d))
        except Exception as e:  # noqa: BLE001 - no repo, no snapshot yet, hub unreachable: start empty
            log.warning("study backup: nothing restored from %s (%s: %s)", config.backup_repo, type(e).__name__, e)
            return None
        try:
            counts = snapshot_counts(local)
        except ValueError as e:
            log.error("study backup: the snapshot in %s was not restored: %s", config.backup_repo, e)
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm", "-journal"):  # the empty database's own, if any
            Path(str(path) + suffix).unlink(missing_ok=True)
        staged = path.with_name(f".{path.name}.restoring")
        shutil.copyfile(local, staged)
        os.replace(staged, path)
    log.info("study backup: restored %d studies, %d votes from %s", counts["study"], counts["vote"],
             config.backup_repo)
    return counts["vote"]


class SnapshotScheduler(CommitScheduler):
    """CommitScheduler whose every push first takes a snapshot, and skips an unchanged one."""

    def __init__(self, db: Database, *, repo_id: str, folder_path: Path, every: float, hf_api: Any = None,
                 token: str | None = None) -> None:
        self.db = db  # set before the scheduler's thread makes its first push
        self.pushed = 0
        self._last_digest: str | None = None
        super().__init__(repo_id=repo_id, folder_path=folder_path, every=every, repo_type="dataset", private=True,
                         allow_patterns=[SNAPSHOT_NAME], hf_api=hf_api, token=token)

    def push_to_hub(self) -> Any:
        with self.lock:
            path = snapshot(self.db, self.folder_path / SNAPSHOT_NAME)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest == self._last_digest:
                return None
            votes = snapshot_counts(path)["vote"]
            info = self.api.upload_folder(repo_id=self.repo_id, repo_type=self.repo_type, folder_path=self.folder_path,
                                          allow_patterns=[SNAPSHOT_NAME], revision=self.revision,
                                          commit_message=f"study snapshot: {votes} votes")
            self._last_digest = digest
            self.pushed += 1
            log.info("study backup: pushed a snapshot with %d votes to %s", votes, self.repo_id)
            return info


def start_backup(config: StudyConfig, db: Database, api: Any = None) -> SnapshotScheduler | None:
    """Push snapshots on a schedule (and at shutdown) when MISC_STUDY_BACKUP_REPO is set."""
    path = sqlite_file(config.db_url)
    if not config.backup_repo or path is None:
        return None
    scheduler = SnapshotScheduler(db, repo_id=config.backup_repo, folder_path=path.parent / "backup",
                                  every=config.backup_every_min, hf_api=api)
    # CommitScheduler pushes at exit (atexit); a Space restart sends SIGTERM, which would
    # skip atexit: turn it into an orderly exit.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("study backup: a snapshot goes to %s every %g min and at shutdown", config.backup_repo,
             config.backup_every_min)
    return scheduler
