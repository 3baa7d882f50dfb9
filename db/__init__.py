"""The study's database: typed SQLAlchemy 2 models, the engine and its sessions.

Only ``study/`` imports this package. SQLite is the default (a file path from the
configuration, WAL mode, busy timeout); any SQLAlchemy URL works (PostgreSQL for larger
studies). The schema is owned by Alembic (``db/migrations``); ``init_db`` upgrades a
database to the latest revision.
"""

from db.engine import Database, StorageError, init_db, make_engine
from db.models import (
    Assignment,
    Base,
    Condition,
    Pair,
    Rater,
    Stimulus,
    Study,
    Vote,
)

__all__ = [
    "Assignment",
    "Base",
    "Condition",
    "Database",
    "Pair",
    "Rater",
    "Stimulus",
    "StorageError",
    "Study",
    "Vote",
    "init_db",
    "make_engine",
]
