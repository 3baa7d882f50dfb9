"""Database faults reach raters and the admin in plain words, and the app checks at start.

A read-only database is opened the way SQLite opens a file it may not write (``mode=ro``:
the tests run as root, which chmod cannot stop); a full disk is SQLite's own limit on the
file's size (``max_page_count`` at the current size), which fails exactly as a full disk does.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, func, select
from study_helpers import open_study
from study_http import serve_study

from bench.study_load import StudyClient, images_of
from db import Database, Vote
from study.errors import StudyError, StudyStorageError
from study.service import StudyService
from study.ui import check_storage


def _read_only(db_file: Path) -> StudyService:
    return StudyService(Database(f"sqlite:///file:{db_file}?mode=ro&uri=true"))


def _disk_full(service: StudyService) -> None:
    """Every new connection may not grow the file beyond its size now."""
    engine = service.db.engine
    engine.dispose()
    raw = engine.raw_connection()  # the driver's own connection: no BEGIN around VACUUM
    try:
        raw.driver_connection.execute("VACUUM")
        pages = raw.driver_connection.execute("PRAGMA page_count").fetchone()[0]
    finally:
        raw.close()
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _cap(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")


def _votes(service: StudyService) -> int:
    with service.db.read() as s:
        return s.scalar(select(func.count(Vote.id))) or 0


def test_read_only_database_refuses_in_plain_words_and_is_caught_at_start(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    service, sid, _ = open_study(tmp_path)
    tok = service.start_session(sid)
    view = service.next_pair(tok)
    assert view is not None and service.db.check_writable() is None
    service.db.dispose()
    ro = _read_only(Path(service.db.url))
    with caplog.at_level(logging.INFO, logger="misc.study"):
        problem = check_storage(ro)
    assert problem is not None and "read-only" in problem
    assert any("NOT writable" in r.message and r.levelno == logging.ERROR for r in caplog.records)
    with pytest.raises(StudyStorageError, match="read-only, so nothing could be saved") as e:
        ro.submit_vote(tok, view.assignment_id, "left", 100)
    assert isinstance(e.value, StudyError)
    with pytest.raises(StudyStorageError, match="read-only"):
        ro.start_session(sid)
    assert _votes(ro) == 0
    ro.db.dispose()


def test_full_disk_refuses_the_vote_in_plain_words_and_stores_nothing(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    _disk_full(service)
    stored = 0
    with pytest.raises(StudyStorageError, match="storage is full, so nothing could be saved"):  # noqa: PT012
        for _ in range(200):
            tok = service.start_session(sid)
            while (view := service.next_pair(tok)) is not None:
                service.submit_vote(tok, view.assignment_id, "left", 100)
                stored += 1
    assert _votes(service) == stored  # every acknowledged vote is there, the refused one is not
    service.db.dispose()


async def _rater_session(url: str, sid: int) -> list[list]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        client = StudyClient(http)
        outs = [await client.start(sid)]
        for _ in range(400):
            out = await client.vote("left", 1700000000000)  # an error event raises here
            outs.append(out)
            if any(isinstance(o, str) and "storage is full" in o for o in out):
                break
            if not images_of(out):
                outs.append(await client.start(sid))
        return outs


def test_rater_sees_a_plain_message_over_http_when_the_disk_is_full(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path)
    with serve_study(config, service) as url:
        _disk_full(service)
        outs = asyncio.run(_rater_session(url, sid))
    last = outs[-1]
    message = next(o for o in last if isinstance(o, str) and "storage is full" in o)
    assert "Please tell the study's organiser" in message and "Error" not in message
    service.db.dispose()
