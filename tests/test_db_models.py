"""The study database: Alembic schema equals the models, SQLite settings, constraints refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from db import Base, Database, Pair, Rater, Stimulus, Study, Vote
from tests.study_helpers import open_study


def test_migration_matches_models_and_is_idempotent(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "a.db"))
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0004"
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    Database(str(tmp_path / "a.db"))  # upgrading again changes nothing
    assert set(inspect(db.engine).get_table_names()) >= {"study", "condition", "stimulus", "pair", "rater",
                                                          "assignment", "vote", "alembic_version"}


def test_downgrade_removes_everything(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from db.engine import MIGRATIONS_DIR
    db = Database(str(tmp_path / "b.db"))
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_constraints_refuse_duplicates_and_bad_rows(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    token = service.start_session(sid)
    view = service.next_pair(token)
    assert view is not None
    service.submit_vote(token, view.assignment_id, "left", 1000)
    db = service.db
    with db.read() as s:
        vote = s.query(Vote).one()
        pair = s.get(Pair, vote.pair_id)
        stim = s.query(Stimulus).filter_by(study_id=sid).first()
        rater = s.query(Rater).one()
    bad_rows = [
        Vote(study_id=sid, assignment_id=vote.assignment_id, rater_id=rater.id, pair_id=vote.pair_id, choice="tie",
             left_stimulus_id=vote.left_stimulus_id, right_stimulus_id=vote.right_stimulus_id, response_ms=5),
        Pair(study_id=sid, stimulus_a_id=pair.stimulus_b_id, stimulus_b_id=pair.stimulus_a_id),  # a < b
        Stimulus(study_id=sid, key=stim.key, source_id="x", role="test", condition_id=stim.condition_id,
                 path="p", sha256="0"),  # duplicate key
        Stimulus(study_id=sid, key="new", source_id="x", role="test", condition_id=None, path="p", sha256="0"),
        Study(name="another", status="running"),
    ]
    for row in bad_rows:
        with pytest.raises(IntegrityError):
            with db.write() as s:
                s.add(row)
    with db.read() as s:
        assert s.query(Vote).count() == 1
        assert s.query(Study).count() == 1
