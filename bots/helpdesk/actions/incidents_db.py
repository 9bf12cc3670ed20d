"""Store IT incidents in a local SQLite database, created on first use.

The database lives in the stack's state folder (``$HANDOFF_STATE_DIR``, else the
repo's ``var/``), next to the other runtime state. ServiceNow is not used.
"""
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional, Text

from handoff.config import state_dir

DB_NAME = "helpdesk-incidents.sqlite"
NEW = "new"

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT UNIQUE,
    email TEXT NOT NULL,
    priority TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_by_email ON incidents (email);
"""


@dataclass(frozen=True)
class Incident:
    """One stored incident."""

    number: Text
    email: Text
    priority: Text
    title: Text
    description: Text
    state: Text
    created_at: Text


def db_path() -> Path:
    """Return where the incident database lives."""
    return state_dir() / DB_NAME


def connect(path: Optional[Path] = None) -> sqlite3.Connection:
    """Open the incident database, creating the file and table if they are missing."""
    path = path or db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The action server answers several conversations at once; wait for a
    # writer instead of failing with "database is locked".
    connection = sqlite3.connect(str(path), timeout=10)
    connection.executescript(SCHEMA)
    return connection


def incident_number(row_id: int) -> Text:
    """Return the number a person quotes for the incident with database id ``row_id``."""
    return "INC{:07d}".format(row_id)


def create_incident(
    *, email: Text, priority: Text, title: Text, description: Text, path: Optional[Path] = None
) -> Incident:
    """Store a new incident and return it with its number."""
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with closing(connect(path)) as connection, connection:
        cursor = connection.execute(
            "INSERT INTO incidents (email, priority, title, description, state, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (email.lower(), priority, title, description, NEW, created_at),
        )
        # The number derives from the row id, so it is set in the same transaction.
        number = incident_number(cursor.lastrowid)
        connection.execute("UPDATE incidents SET number = ? WHERE id = ?", (number, cursor.lastrowid))
    return Incident(number, email.lower(), priority, title, description, NEW, created_at)


def list_incidents(email: Text, path: Optional[Path] = None) -> List[Incident]:
    """Return the incidents opened for ``email``, newest first."""
    with closing(connect(path)) as connection:
        rows = connection.execute(
            "SELECT number, email, priority, title, description, state, created_at"
            " FROM incidents WHERE email = ? ORDER BY id DESC",
            (email.lower(),),
        ).fetchall()
    return [Incident(*row) for row in rows]
