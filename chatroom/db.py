"""The routing table: which host owns each conversation, its switches and its transcript."""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversation (
    id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS switch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversation (id),
    from_host TEXT NOT NULL,
    to_host TEXT NOT NULL,
    reason TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversation (id),
    role TEXT NOT NULL CHECK (role IN ('user', 'bot', 'notice')),
    host_id TEXT,
    body TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS message_by_conversation ON message (conversation_id, id);
CREATE INDEX IF NOT EXISTS switch_by_conversation ON switch (conversation_id, id);
-- One row per stay at a human desk (a Parlant session); closed_at is set when it ends.
CREATE TABLE IF NOT EXISTS desk_session (
    session_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversation (id),
    host_id TEXT NOT NULL,
    from_host TEXT NOT NULL,
    reason TEXT,
    opened_at REAL NOT NULL,
    -- The transcript up to this message id is what the bots said before the handoff.
    handoff_message_id INTEGER NOT NULL,
    -- The first Parlant event offset not yet relayed to the transcript.
    next_offset INTEGER NOT NULL DEFAULT 0,
    taken_by TEXT,
    first_reply_at REAL,
    closed_at REAL,
    outcome TEXT,
    -- When the person was told nobody has answered yet (once per stay).
    no_answer_told_at REAL
);
CREATE INDEX IF NOT EXISTS desk_session_by_conversation ON desk_session (conversation_id, closed_at);
-- Each Parlant event is stored in the transcript at most once, whoever relays it first.
CREATE TABLE IF NOT EXISTS desk_event (
    session_id TEXT NOT NULL REFERENCES desk_session (session_id),
    event_offset INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES message (id),
    PRIMARY KEY (session_id, event_offset)
);
-- Who is typing a reply in a stay, from the latest operator status event relayed (never transcript).
CREATE TABLE IF NOT EXISTS desk_typing (
    session_id TEXT PRIMARY KEY REFERENCES desk_session (session_id),
    event_offset INTEGER NOT NULL,
    name TEXT NOT NULL,
    until REAL NOT NULL
);
-- Notices the chatroom gives once per stay (say, "nobody is online" on arrival).
CREATE TABLE IF NOT EXISTS desk_notice (
    session_id TEXT NOT NULL REFERENCES desk_session (session_id),
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (session_id, kind)
);
"""


@dataclass(frozen=True)
class Conversation:
    id: str
    host_id: str


@dataclass(frozen=True)
class Message:
    id: int
    role: str
    host_id: str | None
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Return the message as the page sees it: buttons by id, payloads kept server-side."""
        body = dict(self.body)
        if body.get("buttons"):
            body["buttons"] = [
                {"id": f"{self.id}:{index}", "title": button.get("title", "")}
                for index, button in enumerate(body["buttons"])
            ]
        return {"id": self.id, "role": self.role, "host": self.host_id, **body}


def connect(path: str) -> sqlite3.Connection:
    """Open the routing database, creating its tables on first use."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    # WAL lets page loads read while a turn is being written.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(SCHEMA)
    return db


def get_db() -> sqlite3.Connection:
    """Return this request's database connection."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app) -> None:
    connect(app.config["DATABASE"]).close()
    app.teardown_appcontext(close_db)


def create_conversation(db: sqlite3.Connection, conversation_id: str, host_id: str) -> Conversation:
    now = time.time()
    db.execute(
        "INSERT INTO conversation (id, host_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (conversation_id, host_id, now, now),
    )
    return Conversation(conversation_id, host_id)


def find_conversation(db: sqlite3.Connection, conversation_id: str | None) -> Conversation | None:
    if not conversation_id:
        return None
    row = db.execute(
        "SELECT id, host_id FROM conversation WHERE id = ?", (conversation_id,)
    ).fetchone()
    return Conversation(row["id"], row["host_id"]) if row else None


def switch_host(
    db: sqlite3.Connection, conversation: Conversation, to_host: str, reason: str | None
) -> Conversation:
    """Record a handoff and make ``to_host`` the only host this conversation reaches."""
    now = time.time()
    with db:
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO switch (conversation_id, from_host, to_host, reason, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (conversation.id, conversation.host_id, to_host, reason, now),
        )
        db.execute(
            "UPDATE conversation SET host_id = ?, updated_at = ? WHERE id = ?",
            (to_host, now, conversation.id),
        )
    return Conversation(conversation.id, to_host)


def add_message(
    db: sqlite3.Connection, conversation_id: str, role: str, host_id: str | None, body: dict
) -> Message:
    cursor = db.execute(
        "INSERT INTO message (conversation_id, role, host_id, body, at) VALUES (?, ?, ?, ?, ?)",
        (conversation_id, role, host_id, json.dumps(body), time.time()),
    )
    return Message(cursor.lastrowid, role, host_id, body)


def list_messages(
    db: sqlite3.Connection, conversation_id: str, after_id: int = 0
) -> list[Message]:
    rows = db.execute(
        "SELECT id, role, host_id, body FROM message "
        "WHERE conversation_id = ? AND id > ? ORDER BY id",
        (conversation_id, after_id),
    ).fetchall()
    return [Message(r["id"], r["role"], r["host_id"], json.loads(r["body"])) for r in rows]


def find_button(
    db: sqlite3.Connection, conversation_id: str, message_id: int, index: int
) -> dict[str, Any] | None:
    """Return a button of the latest bot reply, or None if it is not one.

    Only the reply since the person's last message counts, so an old button
    cannot be replayed after the conversation has moved on.
    """
    last_user = db.execute(
        "SELECT COALESCE(MAX(id), 0) FROM message WHERE conversation_id = ? AND role = 'user'",
        (conversation_id,),
    ).fetchone()[0]
    row = db.execute(
        "SELECT body FROM message WHERE id = ? AND conversation_id = ? AND role = 'bot' AND id > ?",
        (message_id, conversation_id, last_user),
    ).fetchone()
    if row is None:
        return None
    buttons = json.loads(row["body"]).get("buttons") or []
    return buttons[index] if 0 <= index < len(buttons) else None


def last_message_id(db: sqlite3.Connection, conversation_id: str) -> int:
    return db.execute(
        "SELECT COALESCE(MAX(id), 0) FROM message WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()[0]


DESK_SESSION_COLUMNS = (
    "session_id, conversation_id, host_id, from_host, reason, opened_at, handoff_message_id, "
    "next_offset, taken_by, first_reply_at, closed_at, outcome, no_answer_told_at"
)


@dataclass(frozen=True)
class DeskSession:
    """A stay at a human desk: the Parlant session that holds it and how far it was relayed."""

    session_id: str
    conversation_id: str
    host_id: str
    from_host: str
    reason: str | None
    opened_at: float
    handoff_message_id: int
    next_offset: int
    taken_by: str | None
    first_reply_at: float | None
    closed_at: float | None
    outcome: str | None
    no_answer_told_at: float | None


def open_desk_session(
    db: sqlite3.Connection, session_id: str, conversation_id: str, host_id: str,
    from_host: str, reason: str | None,
) -> DeskSession:
    """Record a new desk stay; any stay still open for the conversation is closed first."""
    now = time.time()
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE desk_session SET closed_at = ?, outcome = 'superseded' "
            "WHERE conversation_id = ? AND closed_at IS NULL",
            (now, conversation_id),
        )
        db.execute(
            "INSERT INTO desk_session (session_id, conversation_id, host_id, from_host, reason, "
            "opened_at, handoff_message_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, conversation_id, host_id, from_host, reason, now,
             last_message_id(db, conversation_id)),
        )
    return find_desk_session(db, session_id)


def _desk_session(row: sqlite3.Row | None) -> DeskSession | None:
    return DeskSession(**dict(row)) if row else None


def find_desk_session(db: sqlite3.Connection, session_id: str) -> DeskSession | None:
    return _desk_session(db.execute(
        f"SELECT {DESK_SESSION_COLUMNS} FROM desk_session WHERE session_id = ?", (session_id,)
    ).fetchone())


def find_open_desk_session(db: sqlite3.Connection, conversation_id: str) -> DeskSession | None:
    """Return the conversation's current desk stay, or None if it is not at a desk."""
    return _desk_session(db.execute(
        f"SELECT {DESK_SESSION_COLUMNS} FROM desk_session "
        "WHERE conversation_id = ? AND closed_at IS NULL ORDER BY opened_at DESC LIMIT 1",
        (conversation_id,),
    ).fetchone())


def list_desk_sessions(
    db: sqlite3.Connection, *, open_only: bool = True, since: float = 0.0
) -> list[DeskSession]:
    where = "closed_at IS NULL" if open_only else "opened_at >= ?"
    params = () if open_only else (since,)
    rows = db.execute(
        f"SELECT {DESK_SESSION_COLUMNS} FROM desk_session WHERE {where} ORDER BY opened_at", params
    ).fetchall()
    return [_desk_session(row) for row in rows]


def list_conversation_desk_sessions(db: sqlite3.Connection, conversation_id: str) -> list[DeskSession]:
    rows = db.execute(
        f"SELECT {DESK_SESSION_COLUMNS} FROM desk_session WHERE conversation_id = ? ORDER BY opened_at",
        (conversation_id,),
    ).fetchall()
    return [_desk_session(row) for row in rows]


def store_desk_events(
    db: sqlite3.Connection, desk: DeskSession, messages: list[tuple[int, dict]], next_offset: int,
    typing: tuple[int, str | None, float] | None = None,
) -> int:
    """Store relayed messages keyed by their Parlant offset, skipping any stored before.

    Returns how many were new. Two relays of the same events (two open pages, a
    restart in between) store each one once.

    ``typing`` is the batch's last event that says who is typing: (offset, name,
    until), with no name for one that ends it (a message, a "ready" status). It
    is applied only by a relay that got at least as far as any before it, so a
    slow relay never brings back a typing indicator a later message ended.
    """
    stored = 0
    now = time.time()
    with db:
        db.execute("BEGIN IMMEDIATE")
        if typing is not None:
            furthest = db.execute(
                "SELECT next_offset FROM desk_session WHERE session_id = ?", (desk.session_id,)
            ).fetchone()
            if furthest is not None and next_offset >= furthest[0]:
                offset, name, until = typing
                db.execute(
                    "DELETE FROM desk_typing WHERE session_id = ? AND event_offset < ?",
                    (desk.session_id, offset),
                )
                if name:
                    db.execute(
                        "INSERT OR IGNORE INTO desk_typing (session_id, event_offset, name, until) "
                        "VALUES (?, ?, ?, ?)",
                        (desk.session_id, offset, name, until),
                    )
        for offset, body in messages:
            seen = db.execute(
                "SELECT 1 FROM desk_event WHERE session_id = ? AND event_offset = ?",
                (desk.session_id, offset),
            ).fetchone()
            if seen:
                continue
            message = add_message(db, desk.conversation_id, "bot", desk.host_id, body)
            db.execute(
                "INSERT INTO desk_event (session_id, event_offset, message_id) VALUES (?, ?, ?)",
                (desk.session_id, offset, message.id),
            )
            stored += 1
        if stored:
            db.execute(
                "UPDATE desk_session SET first_reply_at = COALESCE(first_reply_at, ?) WHERE session_id = ?",
                (now, desk.session_id),
            )
        db.execute(
            "UPDATE desk_session SET next_offset = MAX(next_offset, ?) WHERE session_id = ?",
            (next_offset, desk.session_id),
        )
    return stored


def take_desk_session(db: sqlite3.Connection, session_id: str, operator: str, *, force: bool) -> str | None:
    """Mark who handles a desk stay (only if nobody does yet, unless forced); return who does."""
    if force:
        db.execute("UPDATE desk_session SET taken_by = ? WHERE session_id = ?", (operator, session_id))
    else:
        db.execute(
            "UPDATE desk_session SET taken_by = ? WHERE session_id = ? AND taken_by IS NULL",
            (operator, session_id),
        )
    row = db.execute("SELECT taken_by FROM desk_session WHERE session_id = ?", (session_id,)).fetchone()
    return row["taken_by"] if row else None


def close_desk_session(db: sqlite3.Connection, session_id: str, outcome: str) -> bool:
    """End a desk stay; return False if it had already ended."""
    cursor = db.execute(
        "UPDATE desk_session SET closed_at = ?, outcome = ? WHERE session_id = ? AND closed_at IS NULL",
        (time.time(), outcome, session_id),
    )
    return cursor.rowcount == 1


def queue_position(db: sqlite3.Connection, stay: DeskSession) -> int:
    """Return the stay's place among those at its desk still waiting for a first reply (1 = next)."""
    return db.execute(
        "SELECT COUNT(*) FROM desk_session WHERE host_id = ? AND closed_at IS NULL "
        "AND first_reply_at IS NULL AND opened_at <= ?",
        (stay.host_id, stay.opened_at),
    ).fetchone()[0]


def recent_reply_waits(db: sqlite3.Connection, host_id: str, since: float) -> list[float]:
    """Return the seconds each stay at a desk since ``since`` waited for its first human reply."""
    rows = db.execute(
        "SELECT first_reply_at - opened_at FROM desk_session "
        "WHERE host_id = ? AND opened_at >= ? AND first_reply_at IS NOT NULL",
        (host_id, since),
    ).fetchall()
    return [row[0] for row in rows]


def mark_no_answer_told(db: sqlite3.Connection, session_id: str) -> bool:
    """Record that the person was told nobody answered; False if they had been already."""
    cursor = db.execute(
        "UPDATE desk_session SET no_answer_told_at = ? WHERE session_id = ? AND no_answer_told_at IS NULL",
        (time.time(), session_id),
    )
    return cursor.rowcount == 1


def find_desk_typing(db: sqlite3.Connection, session_id: str, now: float) -> dict[str, Any] | None:
    """Return who is typing in a stay and until when, or None if nobody is (or it has run out)."""
    row = db.execute(
        "SELECT name, until FROM desk_typing WHERE session_id = ? AND until > ?", (session_id, now)
    ).fetchone()
    return {"name": row["name"], "until": row["until"]} if row else None


def mark_desk_notice(db: sqlite3.Connection, session_id: str, kind: str) -> bool:
    """Record that a once-per-stay notice was decided on; False if it had been already."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO desk_notice (session_id, kind, at) VALUES (?, ?, ?)",
        (session_id, kind, time.time()),
    )
    return cursor.rowcount == 1
