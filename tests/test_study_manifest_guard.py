"""The manifest path never opens the study database (issue 11 item 5: acknowledged votes lost).

Opening and closing the SQLite file in the app's process drops SQLite's POSIX locks; the
next outside open/close (a backup, the sqlite3 shell) then deletes the live WAL and every
vote written after it is gone, while ``integrity_check`` still says "ok".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from study_helpers import count_votes, open_study

from study.errors import ManifestError
from study.importer import import_manifest
from study.manifest import load_manifest
from study.service import StudyService


def _vote(service: StudyService, sid: int, n: int) -> int:
    done = 0
    for _ in range(n):
        tok = service.start_session(sid)
        view = service.next_pair(tok)
        assert view is not None
        service.submit_vote(tok, view.assignment_id, "left", 100)
        done += 1
    return done


def _outside_open_close(db_file: Path) -> None:
    """Another process opens and closes the database, as a backup or the sqlite3 shell would."""
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('select count(*) from vote').fetchall(); c.close()"
    subprocess.run([sys.executable, "-c", code, str(db_file)], check=True, timeout=60)


def _outsidecount_votes(db_file: Path) -> int:
    """Votes another process sees while the app still runs (what survives a kill -9 now)."""
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('select count(*) from vote').fetchone()[0])"
    out = subprocess.run([sys.executable, "-c", code, str(db_file)], check=True, timeout=60, capture_output=True)
    return int(out.stdout)


def _manifest_naming(tmp_path: Path, target: Path) -> Path:
    """A manifest whose first stimulus is ``target`` (e.g. the database renamed as an image)."""
    m = json.loads((tmp_path / "bench" / "manifest.json").read_text())
    m["stimuli"][0]["path"] = str(target)
    out = tmp_path / "bench" / "evil.json"
    out.write_text(json.dumps(m))
    return out


@pytest.mark.parametrize("how", ["db path", "wal path", "db linked as .json", "db linked as image"])
def test_manifest_path_never_opens_the_database_and_no_vote_is_lost(tmp_path: Path, how: str) -> None:
    service, sid, config = open_study(tmp_path)
    db_file = Path(config.db_url).resolve()
    acknowledged = _vote(service, sid, 3)
    assert Path(str(db_file) + "-wal").is_file()  # WAL mode, not yet checkpointed
    if how == "db path":
        target = db_file
    elif how == "wal path":
        target = Path(str(db_file) + "-wal")
    elif how == "db linked as .json":
        target = tmp_path / "manifest.json"
        os.link(db_file, target)
    else:
        link = tmp_path / "bench" / "image.png"
        os.link(db_file, link)
        target = _manifest_naming(tmp_path, link)
    with pytest.raises(ManifestError) as refused:
        import_manifest(service.db, target, config, name="evil")
    _outside_open_close(db_file)
    acknowledged += _vote(service, sid, 3)  # the app keeps taking votes after the attempt
    assert _outsidecount_votes(db_file) == acknowledged == 6
    service.db.dispose()
    assert count_votes(config.db_url) == acknowledged == 6
    assert "must end in" in str(refused.value) or "database's own files" in str(refused.value)


def test_load_manifest_checks_suffix_before_opening(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("{}")
    with pytest.raises(ManifestError, match="must end in .json or .csv"):
        load_manifest(bad)
    with pytest.raises(ManifestError, match="file not found"):
        load_manifest(tmp_path / "missing.json")
