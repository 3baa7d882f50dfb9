"""A local stand-in for the Hugging Face Hub: the hub cannot be reached from these machines.

``LocalFolderHub`` answers the calls the study's backup makes on ``HfApi`` (create_repo,
run_as_future, upload_folder, hf_hub_download) with a folder per dataset repo; every
upload is a commit, kept as a numbered copy so tests can look at each one.
"""

from __future__ import annotations

import fnmatch
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class LocalFolderHub:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._pool = ThreadPoolExecutor(max_workers=1)

    def repo(self, repo_id: str) -> Path:
        return self.root / repo_id.replace("/", "__")

    def create_repo(self, repo_id: str, private: bool | None = None, repo_type: str | None = None,
                    exist_ok: bool = False) -> SimpleNamespace:
        (self.repo(repo_id) / "commits").mkdir(parents=True, exist_ok=exist_ok)
        return SimpleNamespace(repo_id=repo_id)

    def run_as_future(self, fn: Any, *args: Any, **kwargs: Any) -> Future:
        return self._pool.submit(fn, *args, **kwargs)

    def upload_folder(self, *, repo_id: str, folder_path: Path, repo_type: str | None = None,
                      allow_patterns: list[str] | None = None, revision: str | None = None,
                      commit_message: str = "") -> SimpleNamespace:
        repo = self.repo(repo_id)
        n = len(list((repo / "commits").iterdir()))
        commit = repo / "commits" / f"{n:05d}"
        commit.mkdir()
        for f in sorted(Path(folder_path).iterdir()):
            if f.is_file() and (allow_patterns is None or any(fnmatch.fnmatch(f.name, p) for p in allow_patterns)):
                shutil.copyfile(f, commit / f.name)
                shutil.copyfile(f, repo / f".{f.name}.incoming")
                (repo / f".{f.name}.incoming").replace(repo / f.name)
        (commit / "MESSAGE").write_text(commit_message)
        return SimpleNamespace(commit_message=commit_message, oid=f"{n:05d}")

    def hf_hub_download(self, *, repo_id: str, filename: str, repo_type: str | None = None,
                        local_dir: str | Path | None = None) -> str:
        src = self.repo(repo_id) / filename
        if not src.is_file():
            raise FileNotFoundError(f"{filename} is not in {repo_id}")
        dest = Path(local_dir or self.root / "downloads") / filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return str(dest)

    def commits(self, repo_id: str) -> list[Path]:
        return sorted((self.repo(repo_id) / "commits").iterdir())


def worker(db_url: str, hub_root: str, repo: str, every_min: float, sid: int) -> None:
    """An app process for the kill -9 / SIGTERM tests: backups on, raters voting as fast as
    they can; prints ``ack N`` after each vote the service has acknowledged."""
    from db import Database
    from study.backup import start_backup
    from study.config import StudyConfig
    from study.service import StudyService

    config = StudyConfig(db_url=db_url, backup_repo=repo, backup_every_min=every_min)
    service = StudyService(Database(db_url, create=False), seed=1)
    start_backup(config, service.db, api=LocalFolderHub(Path(hub_root)))
    acked = 0
    print("ready", flush=True)
    while True:
        tok = service.start_session(sid)
        while (view := service.next_pair(tok)) is not None:
            service.submit_vote(tok, view.assignment_id, "left", 100)
            acked += 1
            print(f"ack {acked}", flush=True)
            time.sleep(0.005)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
