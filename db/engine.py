"""Engine, sessions and schema set-up.

SQLite is set up for many concurrent writers (measured in ../shared/OFFLINE.md): WAL
journal, ``busy_timeout`` so a writer waits instead of failing, ``synchronous=NORMAL``,
foreign keys on. Python's sqlite3 driver would otherwise open a transaction only at the
first write, which makes a read-then-write racy; here the driver's own transaction
handling is switched off and SQLAlchemy's ``begin`` emits ``BEGIN`` (reads) or
``BEGIN IMMEDIATE`` (``Database.write()``: takes the write lock before the first read).
On other backends ``write()`` is an ordinary transaction and the unique constraints do
the refusing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000


class StorageError(Exception):
    """The database itself failed (full disk, read-only file, I/O error), not the request.

    The message is in plain words for the person who sees it; nothing of the failed
    transaction was stored.
    """


# SQLite's wording of storage faults → what a rater or the admin is told.
STORAGE_FAULTS = (
    ("full", "the study's storage is full"),
    ("readonly", "the study's database is read-only"),
    ("read-only", "the study's database is read-only"),
    ("disk i/o error", "the study's database could not be read or written (disk I/O error)"),
    ("unable to open database", "the study's database file cannot be opened"),
    ("database is locked", "the study's database stayed busy too long"),
)


def storage_fault(error: BaseException) -> str | None:
    """A plain description if ``error`` is a storage fault of the database, else None."""
    if not isinstance(error, OperationalError):
        return None
    text_ = str(error.orig if error.orig is not None else error).lower()
    return next((plain for key, plain in STORAGE_FAULTS if key in text_), None)


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, echo: bool = False) -> Engine:
    """An engine for ``url``; a plain path is taken as a SQLite file (its folder is made)."""
    if "://" not in url:
        path = Path(url).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    if not _is_sqlite(url):
        return create_engine(url, echo=echo, pool_pre_ping=True, future=True)

    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def init_db(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision (creates it on an empty database)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser interpolates '%': a percent-encoded URL (a socket path, a password with
    # special characters) must be escaped or Alembic refuses it.
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


class Database:
    """Sessions on one engine: ``read()`` for queries, ``write()`` for transactions."""

    def __init__(self, url: str, create: bool = True, echo: bool = False) -> None:
        self.url = url
        # What read()/write() raise on a storage fault; the study sets its own subclass.
        self.storage_error: type[StorageError] = StorageError
        self.engine = make_engine(url, echo=echo)
        self.is_sqlite = self.engine.url.get_backend_name() == "sqlite"
        if create:
            init_db(self.engine)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        writer = self.engine.execution_options(sqlite_immediate=True) if self.is_sqlite else self.engine
        self._write = sessionmaker(writer, expire_on_commit=False)

    def files(self) -> list[Path]:
        """The SQLite database file and its journal / WAL / shared-memory companions.

        No code path may open these other than through the engine: opening and closing
        one in this process drops SQLite's POSIX locks, and the next outside open/close
        can then delete the live WAL (acknowledged votes lost). Empty for other backends.
        """
        name = self.engine.url.database if self.is_sqlite else None
        if not name or name == ":memory:" or name.startswith("file:"):
            return []
        path = Path(name).resolve()
        return [path] + [path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal")]

    @contextmanager
    def _faults(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as e:
            plain = storage_fault(e)
            if plain is None:
                raise
            raise self.storage_error(f"{plain[0].upper()}{plain[1:]}, so nothing could be saved. "
                                     "Please tell the study's organiser.") from e

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._faults(), self._read() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that holds the write lock from its start (SQLite)."""
        with self._faults(), self._write() as session, session.begin():
            yield session

    def check_writable(self) -> str | None:
        """None if a transaction can be written and committed; else what is wrong, in words.

        Rewrites Alembic's version row with its own value and commits: a read-only file,
        a full disk or an I/O fault shows up here, at start, rather than on a rater's vote.
        """
        try:
            with self.write() as s:
                s.execute(text("UPDATE alembic_version SET version_num = version_num"))
        except StorageError as e:
            return str(e)
        return None

    def dispose(self) -> None:
        self.engine.dispose()
