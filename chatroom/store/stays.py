"""Stays at a human desk: the Parlant session of each, how far it was relayed, who handles it."""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from .conversations import add_message, last_message_id

STAY_COLUMNS = (
    "session_id, conversation_id, host_id, from_host, reason, opened_at, handoff_message_id, "
    "next_offset, taken_by, first_reply_at, closed_at, outcome, no_answer_told_at"
)


@dataclass(frozen=True)
class Stay:
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


def open_stay(
    db: sqlite3.Connection, session_id: str, conversation_id: str, host_id: str,
    from_host: str, reason: str | None,
) -> Stay:
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
    return find_stay(db, session_id)


def _stay(row: sqlite3.Row | None) -> Stay | None:
    return Stay(**dict(row)) if row else None


def find_stay(db: sqlite3.Connection, session_id: str) -> Stay | None:
    return _stay(db.execute(
        f"SELECT {STAY_COLUMNS} FROM desk_session WHERE session_id = ?", (session_id,)
    ).fetchone())


def find_open_stay(db: sqlite3.Connection, conversation_id: str) -> Stay | None:
    """Return the conversation's current desk stay, or None if it is not at a desk."""
    return _stay(db.execute(
        f"SELECT {STAY_COLUMNS} FROM desk_session "
        "WHERE conversation_id = ? AND closed_at IS NULL ORDER BY opened_at DESC LIMIT 1",
        (conversation_id,),
    ).fetchone())


def list_stays(
    db: sqlite3.Connection, *, open_only: bool = True, since: float = 0.0
) -> list[Stay]:
    where = "closed_at IS NULL" if open_only else "opened_at >= ?"
    params = () if open_only else (since,)
    rows = db.execute(
        f"SELECT {STAY_COLUMNS} FROM desk_session WHERE {where} ORDER BY opened_at", params
    ).fetchall()
    return [_stay(row) for row in rows]


def list_conversation_stays(db: sqlite3.Connection, conversation_id: str) -> list[Stay]:
    rows = db.execute(
        f"SELECT {STAY_COLUMNS} FROM desk_session WHERE conversation_id = ? ORDER BY opened_at",
        (conversation_id,),
    ).fetchall()
    return [_stay(row) for row in rows]


def store_stay_events(
    db: sqlite3.Connection, desk: Stay, messages: list[tuple[int, dict]], next_offset: int,
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


def take_stay(db: sqlite3.Connection, session_id: str, operator: str, *, force: bool) -> str | None:
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


def close_stay(db: sqlite3.Connection, session_id: str, outcome: str) -> bool:
    """End a desk stay; return False if it had already ended."""
    cursor = db.execute(
        "UPDATE desk_session SET closed_at = ?, outcome = ? WHERE session_id = ? AND closed_at IS NULL",
        (time.time(), outcome, session_id),
    )
    return cursor.rowcount == 1


def queue_position(db: sqlite3.Connection, stay: Stay) -> int:
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


def find_stay_typing(db: sqlite3.Connection, session_id: str, now: float) -> dict[str, Any] | None:
    """Return who is typing in a stay and until when, or None if nobody is (or it has run out)."""
    row = db.execute(
        "SELECT name, until FROM desk_typing WHERE session_id = ? AND until > ?", (session_id, now)
    ).fetchone()
    return {"name": row["name"], "until": row["until"]} if row else None


def mark_stay_notice(db: sqlite3.Connection, session_id: str, kind: str) -> bool:
    """Record that a once-per-stay notice was decided on; False if it had been already."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO desk_notice (session_id, kind, at) VALUES (?, ?, ?)",
        (session_id, kind, time.time()),
    )
    return cursor.rowcount == 1
