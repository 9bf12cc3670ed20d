"""Conversations: the host each one is with, its switches and its transcript."""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any


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


def last_user_text(db: sqlite3.Connection, conversation_id: str) -> str | None:
    """Return the text of the person's latest message, or None if they have not written."""
    row = db.execute(
        "SELECT body FROM message WHERE conversation_id = ? AND role = 'user' ORDER BY id DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    return json.loads(row["body"]).get("text") if row else None


def count_routes(db: sqlite3.Connection, since: float) -> list[sqlite3.Row]:
    """Return (from_host, to_host, count) of the switches since a time, most frequent first."""
    return db.execute(
        "SELECT from_host, to_host, COUNT(*) AS count FROM switch WHERE at >= ? "
        "GROUP BY from_host, to_host ORDER BY count DESC, from_host, to_host",
        (since,),
    ).fetchall()
