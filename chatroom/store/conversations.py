"""Conversations: the host each one is with, its switches and its transcript."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from .engine import transaction
from .schema import conversation, message, pending_switch, switch


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


# The key of a button the chatroom acts on itself (an offer it makes in a notice).
CHOICE = "choice"

# Statements are built once: building one costs more than SQLite takes to run it.
# Their parameters are named by sa.bindparam and given at each call.
LOCK = sa.update(conversation).where(conversation.c.id == sa.bindparam("conversation_id")).values(
    updated_at=sa.bindparam("now")
)
INSERT_CONVERSATION = sa.insert(conversation)
FIND_CONVERSATION = sa.select(conversation.c.id, conversation.c.host_id).where(
    conversation.c.id == sa.bindparam("conversation_id")
)
MOVE = sa.update(conversation).where(conversation.c.id == sa.bindparam("conversation_id")).values(
    host_id=sa.bindparam("to_host"), updated_at=sa.bindparam("now")
)
INSERT_SWITCH = sa.insert(switch)
FIND_PENDING = sa.select(pending_switch).where(
    pending_switch.c.conversation_id == sa.bindparam("conversation_id")
)
INSERT_MESSAGE = sa.insert(message)
LIST_MESSAGES = (
    sa.select(message.c.id, message.c.role, message.c.host_id, message.c.body)
    .where(message.c.conversation_id == sa.bindparam("conversation_id"), message.c.id > sa.bindparam("after"))
    .order_by(message.c.id)
)
of_conversation = message.c.conversation_id == sa.bindparam("conversation_id")
LAST_ID = sa.select(sa.func.coalesce(sa.func.max(message.c.id), 0)).where(of_conversation)
LAST_USER_ID = LAST_ID.where(message.c.role == "user")
BUTTON_MESSAGE = sa.select(message.c.role, message.c.body).where(
    message.c.id == sa.bindparam("message_id"),
    of_conversation,
    message.c.role.in_(("bot", "notice")),
    message.c.id > LAST_USER_ID.scalar_subquery(),
)
LAST_USER_BODY = (
    sa.select(message.c.body)
    .where(of_conversation, message.c.role == "user")
    .order_by(message.c.id.desc())
    .limit(1)
)
route_count = sa.func.count().label("count")
COUNT_ROUTES = (
    sa.select(switch.c.from_host, switch.c.to_host, route_count)
    .where(switch.c.at >= sa.bindparam("since"))
    .group_by(switch.c.from_host, switch.c.to_host)
    .order_by(route_count.desc(), switch.c.from_host, switch.c.to_host)
)


def lock_conversation(db: Connection, conversation_id: str, now: float) -> None:
    """Hold the conversation's row until the transaction ends, so its writes go one at a time.

    On PostgreSQL a message id is drawn when the row is inserted, not when it
    is committed; with every transcript write behind this lock, ids of one
    conversation become visible in the order they were drawn, which is what
    lets a reader resume after the last id it saw. SQLite has one writer at a
    time anyway.
    """
    db.execute(LOCK, {"conversation_id": conversation_id, "now": now})


def create_conversation(db: Connection, conversation_id: str, host_id: str) -> Conversation:
    now = time.time()
    db.execute(INSERT_CONVERSATION, {
        "id": conversation_id, "host_id": host_id, "created_at": now, "updated_at": now,
    })
    return Conversation(conversation_id, host_id)


def find_conversation(db: Connection, conversation_id: str | None) -> Conversation | None:
    if not conversation_id:
        return None
    row = db.execute(FIND_CONVERSATION, {"conversation_id": conversation_id}).first()
    return Conversation(row.id, row.host_id) if row else None


def switch_host(
    db: Connection, conversation: Conversation, to_host: str, reason: str | None,
    *, reason_code: str | None = None, envelope: dict[str, Any] | None = None,
) -> Conversation:
    """Record a handoff and make ``to_host`` the only host this conversation reaches.

    ``reason_code`` is one of the handoff envelope's reasons; ``envelope`` is
    the whole envelope, kept as JSON text.
    """
    now = time.time()
    with transaction(db):
        db.execute(MOVE, {"conversation_id": conversation.id, "to_host": to_host, "now": now})
        db.execute(INSERT_SWITCH, {
            "conversation_id": conversation.id, "from_host": conversation.host_id, "to_host": to_host,
            "reason": reason, "at": now, "reason_code": reason_code,
            "envelope": json.dumps(envelope) if envelope is not None else None,
        })
    return Conversation(conversation.id, to_host)


def add_message(
    db: Connection, conversation_id: str, role: str, host_id: str | None, body: dict
) -> Message:
    now = time.time()
    with transaction(db):
        lock_conversation(db, conversation_id, now)
        result = db.execute(INSERT_MESSAGE, {
            "conversation_id": conversation_id, "role": role, "host_id": host_id, "body": json.dumps(body),
            "at": now,
        })
    return Message(result.inserted_primary_key[0], role, host_id, body)


def list_messages(db: Connection, conversation_id: str, after_id: int = 0) -> list[Message]:
    rows = db.execute(LIST_MESSAGES, {"conversation_id": conversation_id, "after": after_id})
    return [Message(row.id, row.role, row.host_id, json.loads(row.body)) for row in rows]


def find_button(
    db: Connection, conversation_id: str, message_id: int, index: int
) -> dict[str, Any] | None:
    """Return a button of the latest reply (a bot's, or the chatroom's notice), or None if it is not one.

    Only the reply since the person's last message counts, so an old button
    cannot be replayed after the conversation has moved on. A button's
    ``choice`` (a choice the chatroom itself acts on) counts only in a notice:
    a bot cannot offer one.
    """
    row = db.execute(BUTTON_MESSAGE, {"conversation_id": conversation_id, "message_id": message_id}).first()
    if row is None:
        return None
    buttons = json.loads(row.body).get("buttons") or []
    if not 0 <= index < len(buttons):
        return None
    button = dict(buttons[index])
    if row.role != "notice":
        button.pop(CHOICE, None)
    return button


def last_message_id(db: Connection, conversation_id: str) -> int:
    return db.execute(LAST_ID, {"conversation_id": conversation_id}).scalar_one()


def last_user_text(db: Connection, conversation_id: str) -> str | None:
    """Return the text of the person's latest message, or None if they have not written."""
    body = db.execute(LAST_USER_BODY, {"conversation_id": conversation_id}).scalar()
    return json.loads(body).get("text") if body is not None else None


def count_routes(db: Connection, since: float) -> list[RowMapping]:
    """Return (from_host, to_host, count) of the switches since a time, most frequent first."""
    return list(db.execute(COUNT_ROUTES, {"since": since}).mappings())


@dataclass(frozen=True)
class PendingSwitch:
    """A handoff the target was (or was about to be) told of, not yet recorded as a switch."""

    conversation_id: str
    from_host: str
    to_host: str
    envelope: dict[str, Any]
    started_at: float


def begin_switch(db: Connection, conversation_id: str, from_host: str, to_host: str, envelope: dict) -> None:
    """Note a handoff before its target is told (replacing any earlier note for the conversation)."""
    with transaction(db):
        db.execute(sa.delete(pending_switch).where(pending_switch.c.conversation_id == conversation_id))
        db.execute(sa.insert(pending_switch).values(
            conversation_id=conversation_id, from_host=from_host, to_host=to_host,
            envelope=json.dumps(envelope), started_at=time.time(),
        ))


def end_switch(db: Connection, conversation_id: str) -> None:
    """Forget a handoff's note: it was recorded as a switch, or it failed and nothing changed."""
    db.execute(sa.delete(pending_switch).where(pending_switch.c.conversation_id == conversation_id))


def _pending(row: RowMapping) -> PendingSwitch:
    return PendingSwitch(
        row["conversation_id"], row["from_host"], row["to_host"], json.loads(row["envelope"]),
        row["started_at"],
    )


def find_pending_switch(db: Connection, conversation_id: str) -> PendingSwitch | None:
    row = db.execute(FIND_PENDING, {"conversation_id": conversation_id}).mappings().first()
    return _pending(row) if row else None


def list_pending_switches(db: Connection) -> list[PendingSwitch]:
    rows = db.execute(sa.select(pending_switch).order_by(pending_switch.c.started_at)).mappings()
    return [_pending(row) for row in rows]


def recent_switches(db: Connection, conversation_id: str, since: float, limit: int) -> list[tuple[str, str]]:
    """Return (from, to) of the conversation's latest switches since a time, oldest first."""
    rows = db.execute(
        sa.select(switch.c.from_host, switch.c.to_host)
        .where(switch.c.conversation_id == conversation_id, switch.c.at >= since)
        .order_by(switch.c.id.desc()).limit(limit)
    ).all()
    return [(row.from_host, row.to_host) for row in reversed(rows)]
