"""The store's schema versions (Alembic): the chatroom upgrades its database to the newest at start.

Each change of schema is one more revision in ``versions/`` whose
``down_revision`` is the newest before it; the tables in ``..schema`` describe
the newest. A database made before versions were kept (the same tables, no
``alembic_version``) is stamped with the first revision, then upgraded.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from ..engine import transaction

logger = logging.getLogger(__name__)
# The schema the store had before versions were kept.
FIRST = "0001"
# Alembic keeps the running migration's context in a module global: one at a time per process.
_one_at_a_time = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic config for these migrations, running on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """Return the newest revision."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """Return the database's revision, or None if it has none (new, or made before versions)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision, in one transaction."""
    with _one_at_a_time, engine.connect() as connection:
        try:
            with transaction(connection):
                _upgrade(connection)
        except sa.exc.DBAPIError:
            # Workers starting together race to upgrade; the losers find it done.
            if current_revision(connection) != head():
                raise
            logger.info("%s: upgraded by another process meanwhile", engine.url)


def _upgrade(connection: Connection) -> None:
    config = alembic_config(connection)
    if current_revision(connection) is None and sa.inspect(connection).has_table("conversation"):
        logger.info("%s: adopting a database made before schema versions as %s", connection.engine.url, FIRST)
        command.stamp(config, FIRST)
    command.upgrade(config, "head")
