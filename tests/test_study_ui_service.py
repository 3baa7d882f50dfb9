"""The rater and admin logic without a browser: login back-off, sessions, links, traps, screening,
the 0001 → 0002 migration."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from db import Assignment, Database, Pair, Rater, Stimulus, Vote
from study.auth import AdminAuth, BackoffConfig, LoginThrottled
from study.errors import AuthError, DuplicateVoteError, ManifestError, StudyClosedError, StudyError
from study.importer import StudyOptions, import_manifest
from study.screening import ScreeningConfig, screen
from study.service import Viewing
from tests.study_helpers import make_config, open_study, write_images_manifest


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_login_backs_off_per_client_then_for_everyone(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    auth = AdminAuth("s3cret-pw", BackoffConfig(base_delay=1, max_delay=60, global_limit=5, global_window=600,
                                                global_lockout=120), clock=clock)
    caplog.set_level(logging.INFO, logger="misc.study.auth")
    waits = []
    for _ in range(4):  # one client guessing: 1, 2, 4, 8 s
        with pytest.raises(AuthError, match="wrong admin password"):
            auth.login("guess", "10.0.0.1")
        with pytest.raises(LoginThrottled) as e:
            auth.login("s3cret-pw", "10.0.0.1")  # even the right password waits
        waits.append(round(e.value.retry_after))
        clock.t += e.value.retry_after
    assert waits == [1, 2, 4, 8]
    assert auth.is_session(auth.login("s3cret-pw", "10.0.0.2"))  # another client is not held back
    # Many clients, one failure each: past the global limit every login waits.
    with pytest.raises(AuthError):
        auth.login("x", "10.0.0.3")
    with pytest.raises(AuthError):
        auth.login("x", "10.0.0.4")
    with pytest.raises(LoginThrottled, match="try again in 120 s"):
        auth.login("s3cret-pw", "10.0.0.9")
    clock.t += 121
    token = auth.login("s3cret-pw", "10.0.0.9")
    assert auth.is_session(token) and not auth.is_session("forged") and not auth.is_session(None)
    auth.logout(token)
    assert not auth.is_session(token)
    assert "failed admin login from 10.0.0.1" in caplog.text
    assert "s3cret-pw" not in caplog.text and "guess" not in caplog.text


def test_sessions_expire_and_a_disabled_admin_refuses() -> None:
    clock = Clock()
    auth = AdminAuth("pw", BackoffConfig(session_ttl=10), clock=clock)
    token = auth.login("pw", "c")
    clock.t += 11
    assert not auth.is_session(token)
    with pytest.raises(AuthError, match="disabled"):
        AdminAuth(None).login("", "c")


def test_a_platform_id_holds_one_session_per_study(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    plat = {"PROLIFIC_PID": "p1", "STUDY_ID": "s", "SESSION_ID": "x", "evil": "dropped"}
    tok = service.start_session(sid, {}, plat)
    assert service.start_session(sid, {}, {"PROLIFIC_PID": "p1"}) == tok
    assert service.start_session(sid, {}, {"PROLIFIC_PID": "p2"}) != tok
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(service.start_session(sid, {}, {"workerId": "w"})))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1  # raced starts of one participant: one session
    with service.db.read() as s:
        r = s.scalars(select(Rater).where(Rater.token == tok)).one()
        assert r.platform == {"PROLIFIC_PID": "p1", "STUDY_ID": "s", "SESSION_ID": "x"}
        assert s.scalar(select(func.count(Rater.id)).where(Rater.platform_id == "w")) == 1


def test_resume_shows_the_unanswered_pair_and_counts_the_reload(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    tok = service.start_session(sid)
    first = service.next_pair(tok)
    again = service.next_pair(tok)
    assert again.assignment_id == first.assignment_id and again.shown_count == 2
    assert service.resume(tok, sid).id == sid
    with pytest.raises(StudyError):
        service.resume(tok, sid + 1)
    with pytest.raises(StudyError):
        service.resume("f" * 32)


def test_parallel_votes_of_one_session_answer_only_the_named_pair(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    tok = service.start_session(sid)
    shown = service.next_pair(tok)
    outcomes: list[str] = []

    def cast() -> None:
        try:
            service.submit_vote(tok, shown.assignment_id, "left", 100)
            outcomes.append("ok")
        except DuplicateVoteError:
            outcomes.append("dup")
        service.next_pair(tok)  # what the page does after each answer

    threads = [threading.Thread(target=cast) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["dup"] * 4 + ["ok"]
    with service.db.read() as s:
        assert [v.assignment_id for v in s.scalars(select(Vote).where(Vote.study_id == sid))] == [shown.assignment_id]


def test_viewing_conditions_are_stored_and_nonsense_dropped(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    tok = service.start_session(sid)
    v = service.next_pair(tok)
    viewing = Viewing.parse({"vw": 1400, "vh": 900, "dpr": 2, "view_ms": 1234.4, "mode": "side"})
    service.submit_vote(tok, v.assignment_id, "tie", 500, None, viewing)
    assert Viewing.parse({"vw": float("inf"), "dpr": "2", "view_ms": -1, "mode": "x"}) == Viewing()
    assert Viewing.parse("junk") == Viewing()  # type: ignore[arg-type]
    with service.db.read() as s:
        vote = s.scalars(select(Vote)).one()
    assert (vote.viewport_w, vote.viewport_h, vote.device_pixel_ratio, vote.view_ms, vote.view_mode) == \
        (1400, 900, 2.0, 1234, "side")


def test_study_link_settings_are_checked(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    service.set_link(sid, "My-Study", "CODE1", "https://app.prolific.com/submissions/complete?cc=CODE1")
    info = service.find_study("my-study")
    assert (info.id, info.slug, info.completion_code) == (sid, "my-study", "CODE1")
    assert service.find_study(str(sid)).slug == "my-study"
    for slug, code, url in (("bad slug", None, None), ("123", None, None), ("ok", "x" * 101, None),
                            ("ok", None, "javascript:alert(1)"), ("ok", None, "https://x/\"><script>")):
        with pytest.raises(StudyError):
            service.set_link(sid, slug, code, url)
    assert service.find_study(sid).completion_code == "CODE1"  # refused: nothing changed
    with pytest.raises(StudyError, match="no study"):
        service.find_study("nope")
    service.set_status(sid, "closed")
    with pytest.raises(StudyClosedError, match="is closed"):
        service.start_session(sid)


def test_trap_pairs_are_identical_images_and_only_same_passes(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    assert service.add_trap_pairs(sid) == 3
    assert service.add_trap_pairs(sid) == 0  # once per source
    with service.db.read() as s:
        traps = s.scalars(select(Pair).where(Pair.study_id == sid, Pair.kind == "trap")).all()
        golden = s.scalars(select(Pair).where(Pair.study_id == sid, Pair.kind == "golden")).all()
        for p in traps:
            a, b = s.get(Stimulus, p.stimulus_a_id), s.get(Stimulus, p.stimulus_b_id)
            assert a.sha256 == b.sha256 and p.is_golden and p.golden_better_id is None
    assert len(traps) == 3 and len(golden) == 3
    # Answered "same" a trap passes, a side fails (the analysis counts winner != golden_better).
    for trap, choice in zip(traps[:2], ("tie", "left"), strict=True):
        tok = service.start_session(sid)
        with service.db.write() as s:
            a = Assignment(rater_id=s.scalar(select(Rater.id).where(Rater.token == tok)), pair_id=trap.id,
                           position=0, left_stimulus_id=trap.stimulus_a_id, right_stimulus_id=trap.stimulus_b_id)
            s.add(a)
            s.flush()
            aid = a.id
        service.submit_vote(tok, aid, choice, 100)
    records = service.votes(sid)
    assert [(r.is_golden, r.winner != r.golden_better) for r in records] == [(True, False), (True, True)]
    assert service.votes(sid, include_golden=False) == []  # never scaled


def test_fidelity_needs_references_and_shows_the_original(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    service, _, _ = open_study(tmp_path / "q")
    with pytest.raises(ManifestError, match="fidelity"):
        import_manifest(service.db, write_images_manifest(tmp_path / "noref", with_reference=False), config,
                        name="f0", options=StudyOptions(task="fidelity"))
    sid = import_manifest(service.db, write_images_manifest(tmp_path / "ref"), config, name="f1",
                          options=StudyOptions(task="fidelity", golden_every=0))
    service.set_status(sid, "open")
    tok = service.start_session(sid)
    view = service.next_pair(tok)
    assert view.original_path and Path(view.original_path).is_file()
    assert service.find_study(sid).question.startswith("Which image is closer to the original")


def test_screening_default_is_not_trigger_happy() -> None:
    empty = np.array([], dtype=np.int64)
    golden = {1: (2, 1), 2: (2, 2), 3: (4, 2), 4: (4, 3), 5: (1, 1), 6: (6, 4)}
    out = {s.rater: s for s in screen(empty, empty, empty, np.array([]), 1, golden, ScreeningConfig())}
    assert [r for r in sorted(out) if out[r].flagged] == [2, 4, 6]
    assert "failed 2 of 2 check pairs" in out[2].reasons[0] and "p = " in out[2].reasons[0]


def test_migration_0002_keeps_votes_of_a_0001_database(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from db.engine import MIGRATIONS_DIR
    service, sid, config = open_study(tmp_path)
    tok = service.start_session(sid)
    for _ in range(6):
        v = service.next_pair(tok)
        service.submit_vote(tok, v.assignment_id, "left", 100)
    service.db.dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{config.db_url}")
    command.downgrade(cfg, "0001")
    with sqlite3.connect(config.db_url) as c:
        assert "kind" not in [r[1] for r in c.execute("PRAGMA table_info(pair)")]
        assert c.execute("select count(*) from vote").fetchone()[0] == 6
    db = Database(config.db_url)  # upgrades to head on open
    with db.read() as s:
        assert s.scalar(select(func.count(Vote.id))) == 6
        kinds = dict(s.execute(select(Pair.kind, func.count(Pair.id)).group_by(Pair.kind)).all())
        assert kinds["golden"] == 3 and kinds["test"] > 0
        assert set(s.scalars(select(Assignment.shown_count))) == {1}
