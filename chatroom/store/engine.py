"""Engines and transactions: SQLite or PostgreSQL behind one pooled engine per process.

Connections run in autocommit: a statement on its own is committed as soon as
it ran, as a lone write should be. ``transaction()`` groups statements into one
transaction with one commit; on SQLite it takes the write lock up front
(``BEGIN IMMEDIATE``), so a transaction that reads and then writes never fails
half-way because another writer got in between.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# A connection waits this long for another's write lock (SQLite) before failing.
BUSY_TIMEOUT_SECONDS = 10
# Connections kept open per process, and how many more a burst may open: a
# request holds its connection until it ends, long polls while they wait too.
POOL_SIZE = 10
MAX_OVERFLOW = 50
# Seconds a request waits for a free connection before failing.
POOL_TIMEOUT = 10
# How deep the connection is in transaction(); 0 or absent outside.
DEPTH = "chatroom.transaction_depth"


def database_url(database: str) -> sa.URL:
    """Return the SQLAlchemy URL for the chatroom's ``DATABASE`` setting: a URL or a SQLite file path."""
    if "://" not in database:
        return sa.URL.create("sqlite", database=str(Path(database).expanduser()))
    try:
        url = sa.make_url(database)
    except sa.exc.ArgumentError:
        url = None
    if url is None or url.get_backend_name() not in ("postgresql", "postgres", "sqlite"):
        shown = url.render_as_string(hide_password=True) if url else database.partition("://")[0] + "://..."
        raise ValueError(
            f"DATABASE / $DATABASE_URL={shown!r} is not a PostgreSQL or SQLite URL "
            "(use postgresql://user@127.0.0.1:5432/handoff, or unset it for SQLite under $HANDOFF_STATE_DIR)"
        )
    if url.get_backend_name() != "sqlite":
        # psycopg 3 whatever the URL named (postgresql://, postgres://, +psycopg2).
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_engine(database: str) -> Engine:
    """Return a pooled engine for ``database`` (a URL or a SQLite file path), in autocommit."""
    url = database_url(database)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.QueuePool,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT,
        # A PostgreSQL restart or an idle timeout leaves dead connections in the pool.
        pool_pre_ping=True,
        # The most recently used connection first, so spare ones idle out.
        pool_use_lifo=True,
    )
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _set_sqlite_pragmas)
        sa.event.listen(engine, "begin", _begin_sqlite_write)
    return engine


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets pages read while a turn is written; NORMAL syncs at checkpoints, not every commit.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_sqlite_write(connection: Connection) -> None:
    # Outside transaction() the driver is in autocommit and SQLAlchemy's BEGIN is
    # only bookkeeping; inside, take the write lock before the first read.
    if connection.info.get(DEPTH):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """Run the block's statements as one transaction: committed together, or rolled back on an error.

    A transaction inside another joins it. Keep host and Parlant calls out of
    it: it holds the conversation's lock (and, on SQLite, the database's write
    lock) until it ends.
    """
    depth = connection.info.get(DEPTH, 0)
    if depth:
        connection.info[DEPTH] = depth + 1
        try:
            yield connection
        finally:
            connection.info[DEPTH] = depth
        return
    if connection.in_transaction():
        # The bookkeeping transaction SQLAlchemy began for earlier autocommit statements.
        connection.commit()
    connection.execution_options(isolation_level=connection.default_isolation_level)
    connection.info[DEPTH] = 1
    try:
        with connection.begin():
            yield connection
    finally:
        connection.info[DEPTH] = 0
        if not connection.closed and not connection.invalidated:
            connection.execution_options(isolation_level="AUTOCOMMIT")
