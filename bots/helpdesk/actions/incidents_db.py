"""Store IT incidents in a SQL database the action server creates on first use.

SQLite under the stack's state folder (``$HANDOFF_STATE_DIR``, else var/) by
default, or the PostgreSQL database of ``$DATABASE_URL``. ServiceNow is not used.
Each incident remembers the conversation that opened it: a status request sees
the incidents of its own conversation, or one whose number the person quotes.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import List, Optional, Text

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from handoff.sqlstore import Migration, get_engine

DB_NAME = "helpdesk-incidents.sqlite"
PREFIX = "helpdesk"
NEW = "new"
NUMBER_PATTERN = re.compile(r"\bINC[\s-]?(\d{1,7})\b", re.IGNORECASE)

def _first_columns() -> List[sa.Column]:
    """Return the columns of the table as migration 1 created it (never change: add a migration)."""
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(16), unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    ]


# The table as the queries see it: the first columns plus what later migrations added.
incidents = sa.Table(
    "helpdesk_incidents", sa.MetaData(), *_first_columns(), sa.Column("conversation_id", sa.String(255))
)


def _create_incidents(connection: Connection) -> None:
    first = sa.Table("helpdesk_incidents", sa.MetaData(), *_first_columns())
    sa.Index("helpdesk_incidents_by_email", first.c.email)
    first.create(connection)


def _add_conversation(connection: Connection) -> None:
    connection.execute(sa.text("ALTER TABLE helpdesk_incidents ADD COLUMN conversation_id VARCHAR(255)"))
    sa.Index("helpdesk_incidents_by_conversation", incidents.c.conversation_id, incidents.c.email).create(
        connection
    )


MIGRATIONS = [
    Migration(1, "incidents, numbered INC0000001 on", _create_incidents),
    Migration(2, "remember the conversation that opened each incident", _add_conversation),
]


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


def engine() -> Engine:
    """Return the engine of the incident database, its schema up to date."""
    return get_engine(DB_NAME, PREFIX, MIGRATIONS)


def incident_number(row_id: int) -> Text:
    """Return the number a person quotes for the incident with database id ``row_id``."""
    return "INC{:07d}".format(row_id)


def find_numbers(text: Text) -> List[Text]:
    """Return the incident numbers quoted in ``text`` ("INC0000042", "inc 42"), normalised, in order."""
    numbers = [incident_number(int(match.group(1))) for match in NUMBER_PATTERN.finditer(text or "")]
    return list(dict.fromkeys(numbers))


def create_incident(
    *, email: Text, priority: Text, title: Text, description: Text, conversation_id: Optional[Text] = None
) -> Incident:
    """Store a new incident and return it with its number."""
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    email = email.lower()
    with engine().begin() as connection:
        result = connection.execute(
            sa.insert(incidents).values(
                email=email, priority=priority, title=title, description=description,
                state=NEW, created_at=created_at, conversation_id=conversation_id,
            )
        )
        row_id = result.inserted_primary_key[0]
        # The number derives from the row id, so it is set in the same transaction.
        number = incident_number(row_id)
        connection.execute(sa.update(incidents).where(incidents.c.id == row_id).values(number=number))
    return Incident(number, email, priority, title, description, NEW, created_at)


_COLUMNS = [
    incidents.c.number, incidents.c.email, incidents.c.priority, incidents.c.title,
    incidents.c.description, incidents.c.state, incidents.c.created_at,
]


def list_incidents(email: Text, conversation_id: Text) -> List[Incident]:
    """Return the incidents opened for ``email`` in conversation ``conversation_id``, newest first."""
    query = (
        sa.select(*_COLUMNS)
        .where(incidents.c.email == email.lower(), incidents.c.conversation_id == conversation_id)
        .order_by(incidents.c.id.desc())
    )
    with engine().connect() as connection:
        return [Incident(*row) for row in connection.execute(query)]


def find_incident(number: Text, email: Text) -> Optional[Incident]:
    """Return incident ``number`` if it was opened for ``email``, else None (whoever else it belongs to)."""
    query = sa.select(*_COLUMNS).where(incidents.c.number == number, incidents.c.email == email.lower())
    with engine().connect() as connection:
        row = connection.execute(query).first()
    return Incident(*row) if row is not None else None
