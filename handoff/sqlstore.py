"""SQL storage for the bots' own data (incidents, bank profiles): engines and versioned schemas.

``$DATABASE_URL`` (``postgresql://user@host:port/db``) puts every bot's tables in
that database; unset, each bot keeps a SQLite file under ``$HANDOFF_STATE_DIR``.
Written for SQLAlchemy 1.4 in its 2.0 style (``future=True``), because the
action servers share Rasa 3.6's environment, which pins SQLAlchemy 1.4.

A schema is an ordered list of migrations; a table ``<prefix>_schema_version``
remembers how many have run, so adding a column later is one more migration,
not a broken database.
"""
import os
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Set

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from handoff.config import state_dir

DATABASE_URL_ENV = "DATABASE_URL"
# SQLite waits this long for another writer (another action server, a test) before failing.
SQLITE_BUSY_SECONDS = 10


@dataclass(frozen=True)
class Migration:
    """One step of a schema: ``apply`` runs inside the upgrade's transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


_engines: Dict[str, Engine] = {}
_migrated: Set[str] = set()
_lock = threading.Lock()


def database_url(sqlite_name: str) -> str:
    """Return ``$DATABASE_URL`` (driver set for SQLAlchemy 1.4), or the SQLite file ``sqlite_name``."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        return "sqlite:///{}".format(state_dir() / sqlite_name)
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres", "sqlite")):
        raise ValueError(
            f"${DATABASE_URL_ENV}={url!r} is not a PostgreSQL or SQLite URL "
            "(use e.g. postgresql://user@127.0.0.1:5432/handoff, or unset it for SQLite under var/)"
        )
    if scheme.startswith("postgres"):
        # psycopg 3 is the 3.11 side's driver; SQLAlchemy 1.4 here speaks psycopg2.
        scheme = "postgresql+psycopg2"
    return f"{scheme}://{rest}"


def _new_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, future=True, pool_pre_ping=True)
    path = url[len("sqlite:///"):]
    if path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    engine = sa.create_engine(url, future=True, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    # pysqlite opens transactions lazily and upgrades read locks to write locks
    # mid-way, which fails under concurrent writers; take the write lock up front.
    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def get_engine(sqlite_name: str, prefix: str, migrations: Sequence[Migration]) -> Engine:
    """Return the engine for this process's database with ``prefix``'s schema up to date.

    Engines are made once per URL (the state dir may change between tests) and
    the migrations checked once per URL and schema.
    """
    url = database_url(sqlite_name)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _new_engine(url)
        key = f"{url}#{prefix}"
        if key not in _migrated:
            migrate(engine, prefix, migrations)
            _migrated.add(key)
    return engine


def schema_version(connection: Connection, prefix: str) -> int:
    """Return how many of ``prefix``'s migrations this database has run (0 for a new one)."""
    table = _version_table(prefix)
    if not sa.inspect(connection).has_table(table.name):
        return 0
    return connection.execute(sa.select(sa.func.max(table.c.version))).scalar() or 0


def migrate(engine: Engine, prefix: str, migrations: Sequence[Migration]) -> int:
    """Run the migrations this database lacks, in order, in one transaction; return the version."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"{prefix} migrations must be numbered 1, 2, 3, ... in order, not {versions}")
    table = _version_table(prefix)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two action servers starting at once: the second waits, then finds nothing to do.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": table.name})
        table.create(connection, checkfirst=True)
        current = schema_version(connection, prefix)
        if current > len(migrations):
            raise RuntimeError(
                f"the database at {engine.url!r} has {prefix} schema version {current}, newer than "
                f"this code's {len(migrations)} (update the code or point {DATABASE_URL_ENV} elsewhere)"
            )
        for migration in migrations[current:]:
            migration.apply(connection)
            connection.execute(sa.insert(table).values(version=migration.version))
    return len(migrations)


def _version_table(prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}_schema_version",
        sa.MetaData(),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp()),
    )


def dispose_all() -> None:
    """Close every engine (tests, and a process that forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()
