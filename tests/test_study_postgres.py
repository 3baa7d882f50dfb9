"""The study on PostgreSQL: the same code as on SQLite, through a throwaway server.

pgserver (a pip wheel with PostgreSQL 16 inside) starts a private server on a Unix socket
in a temporary folder; each test gets its own database. psycopg2 is the driver a
PostgreSQL deployment of the study uses (MISC_STUDY_DB=postgresql+psycopg2://...).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from db import Database, Pair, Stimulus, Study, Vote
from study.bench_votes import run_bench
from study.errors import DuplicateVoteError, ManifestError, VoteError
from study.importer import StudyOptions, import_manifest
from study.simulate import SimulationSpec, run
from tests.study_helpers import make_config, open_study, race_same_votes, write_images_manifest

pgserver = pytest.importorskip("pgserver", reason="pgserver is in requirements.txt; install it to test PostgreSQL")
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("pg")
    srv = pgserver.get_server(folder, cleanup_mode="stop")
    yield srv, folder
    srv.cleanup()


@pytest.fixture()
def pg_url(server) -> str:  # noqa: ANN001
    srv, folder = server
    name = f"study_{next(_names)}"
    srv.psql(f"CREATE DATABASE {name};")
    return f"postgresql+psycopg2://postgres@/{name}?host={folder}"


def test_schema_is_migrated_and_reopened(pg_url: str) -> None:
    db = Database(pg_url)
    assert db.engine.url.get_backend_name() == "postgresql" and not db.is_sqlite
    tables = set(inspect(db.engine).get_table_names())
    assert {"study", "stimulus", "pair", "rater", "assignment", "vote", "alembic_version"} <= tables
    db.dispose()
    Database(pg_url).dispose()  # upgrading again changes nothing


def test_same_votes_give_the_same_scores_as_on_sqlite(tmp_path: Path, pg_url: str) -> None:
    """Same seed, same raters: scheduling, votes and the analysis do not depend on the backend
    (a query without ORDER BY would show up here: PostgreSQL returns rows in another order)."""
    spec = SimulationSpec(seed=0, good_raters=6, random_raters=2, pairs_per_session=12)
    on_sqlite = run(spec, tmp_path / "a", bootstrap_samples=10)
    on_pg = run(spec, tmp_path / "b", bootstrap_samples=10, db_url=pg_url)
    assert on_pg.votes == on_sqlite.votes > 0

    def scores(res) -> list:  # noqa: ANN001
        return sorted((r.model, r.level, r.item, round(r.score, 9)) for r in res.analysis.scores)

    assert scores(on_pg) == scores(on_sqlite)
    assert on_pg.random_raters == on_sqlite.random_raters and on_pg.flagged == on_sqlite.flagged


def test_concurrent_voters_lose_nothing(tmp_path: Path, pg_url: str) -> None:
    r = run_bench(tmp_path, processes=3, threads=4, sessions=1, pairs_per_session=6, replay_every=2, db_url=pg_url)
    assert r.database == "postgresql+psycopg2"
    assert r.unexpected_errors == 0
    assert r.votes == 3 * 4 * 6 == r.stored_votes
    assert r.lost == 0 and r.duplicated == 0
    assert r.replays_refused == 3 * 4 * 3


def test_the_same_votes_raced_count_once(tmp_path: Path, pg_url: str) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=4, golden_every=0), db_url=pg_url)
    assert race_same_votes(service, sid, config.db_url, raters=5, processes=2, threads=4) == 5
    with service.db.read() as s:
        assert s.scalar(select(func.count(Vote.id)).where(Vote.study_id == sid)) == 5


def test_bad_input_changes_nothing(tmp_path: Path, pg_url: str) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=4, golden_every=0), db_url=pg_url)
    tok = service.start_session(sid)
    view = service.next_pair(tok)
    assert view is not None
    service.submit_vote(tok, view.assignment_id, "tie", 800)
    with pytest.raises(DuplicateVoteError):
        service.submit_vote(tok, view.assignment_id, "left", 800)
    with pytest.raises(VoteError):
        service.submit_vote(tok, 10**9, "left", 800)  # no such assignment

    def counts() -> tuple[int, ...]:
        with service.db.read() as s:
            return tuple(s.scalar(select(func.count()).select_from(m)) or 0 for m in (Study, Stimulus, Pair, Vote))

    before = counts()
    broken = write_images_manifest(tmp_path / "broken")
    broken.write_text(broken.read_text().replace('"codec"', '"kodec"', 1))  # a stimulus without its codec
    with pytest.raises(ManifestError):
        import_manifest(service.db, broken, make_config(tmp_path, pg_url))
    assert counts() == before
    with service.db.read() as s:
        assert s.scalar(select(Vote.choice).where(Vote.assignment_id == view.assignment_id)) == "tie"
