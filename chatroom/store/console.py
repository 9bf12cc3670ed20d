"""What the console keeps and reads beyond the queue: notes, live conversations, takeovers, figures."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .conversations import last_message_id
from .engine import transaction
from .schema import conversation, desk_session, message, operator_note, switch
from .stays import OPERATOR_TAKEOVER, Stay


@dataclass(frozen=True)
class Note:
    """A note operators leave on a conversation for each other; the person never sees it."""

    id: int
    conversation_id: str
    operator: str
    text: str
    # The note belongs after this message of the transcript (0: before any).
    after_message_id: int
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ActiveConversation:
    """A conversation with recent activity and the last thing said in it."""

    id: str
    host_id: str
    created_at: float
    updated_at: float
    last_role: str
    last_body: dict[str, Any]


@dataclass(frozen=True)
class Switch:
    """One handoff, as the figures see it; with its handoff envelope when the console shows one."""

    conversation_id: str
    from_host: str
    to_host: str
    reason_code: str | None
    at: float
    envelope: dict[str, Any] | None = None


INSERT_NOTE = sa.insert(operator_note)
LIST_NOTES = (
    sa.select(operator_note)
    .where(operator_note.c.conversation_id == sa.bindparam("conversation"))
    .order_by(operator_note.c.id)
)
# Aliases, so a subquery reads its own copy of a table the outer statement also names.
earlier = message.alias("earlier")
last_in_conversation = (
    sa.select(sa.func.max(earlier.c.id))
    .where(earlier.c.conversation_id == conversation.c.id)
    .correlate(conversation)
    .scalar_subquery()
)
LIST_ACTIVE = (
    sa.select(
        conversation.c.id, conversation.c.host_id, conversation.c.created_at, conversation.c.updated_at,
        message.c.role.label("last_role"), message.c.body.label("last_body"),
    )
    .select_from(conversation)
    .join(message, message.c.id == last_in_conversation)
    .where(
        conversation.c.updated_at >= sa.bindparam("since"),
        conversation.c.host_id.in_(sa.bindparam("host_ids", expanding=True)),
    )
    .order_by(conversation.c.updated_at.desc())
    .limit(sa.bindparam("limit"))
)
newest = switch.alias("newest")
MARK_SWITCH = sa.update(switch).where(
    switch.c.id == sa.select(sa.func.max(newest.c.id))
    .where(newest.c.conversation_id == sa.bindparam("conversation"))
    .scalar_subquery()
).values(reason_code=OPERATOR_TAKEOVER)
MARK_STAY = sa.update(desk_session).where(desk_session.c.session_id == sa.bindparam("stay")).values(
    reason_code=OPERATOR_TAKEOVER, taken_by=sa.bindparam("operator")
)
in_period = {"since": sa.bindparam("since"), "until": sa.bindparam("until")}
LIST_SWITCHES = (
    sa.select(
        switch.c.conversation_id, switch.c.from_host, switch.c.to_host, switch.c.reason_code, switch.c.at
    )
    .where(switch.c.at >= in_period["since"], switch.c.at < in_period["until"])
    .order_by(switch.c.at, switch.c.id)
)
LATEST_SWITCH = (
    sa.select(
        switch.c.conversation_id, switch.c.from_host, switch.c.to_host, switch.c.reason_code, switch.c.at,
        switch.c.envelope,
    )
    .where(switch.c.conversation_id == sa.bindparam("conversation"))
    .order_by(switch.c.id.desc())
    .limit(1)
)
LIST_STAYS_BETWEEN = (
    sa.select(desk_session)
    .where(desk_session.c.opened_at >= in_period["since"], desk_session.c.opened_at < in_period["until"])
    .order_by(desk_session.c.opened_at)
)
person_spoke = sa.exists().where(message.c.conversation_id == conversation.c.id, message.c.role == "user")
reached_desk = sa.exists().where(desk_session.c.conversation_id == conversation.c.id)
COUNT_CONTAINED = sa.select(
    sa.func.count(),
    sa.func.coalesce(sa.func.sum(sa.case((reached_desk, 0), else_=1)), 0),
).where(
    conversation.c.created_at >= in_period["since"],
    conversation.c.created_at < in_period["until"],
    person_spoke,
)


def add_note(db: Connection, conversation_id: str, operator: str, text: str) -> Note:
    """Keep an operator's note on a conversation, after the transcript's latest message."""
    now = time.time()
    with transaction(db):
        after = last_message_id(db, conversation_id)
        result = db.execute(INSERT_NOTE, {
            "conversation_id": conversation_id, "operator": operator, "text": text,
            "after_message_id": after, "at": now,
        })
    return Note(result.inserted_primary_key[0], conversation_id, operator, text, after, now)


def list_notes(db: Connection, conversation_id: str) -> list[Note]:
    return [Note(**row) for row in db.execute(LIST_NOTES, {"conversation": conversation_id}).mappings()]


def list_active_conversations(
    db: Connection, host_ids: list[str], since: float, limit: int
) -> list[ActiveConversation]:
    """Return conversations now with one of ``host_ids`` and active since ``since``, latest first.

    Only conversations with something in their transcript count.
    """
    if not host_ids:
        return []
    rows = db.execute(LIST_ACTIVE, {"since": since, "host_ids": host_ids, "limit": limit}).mappings()
    return [ActiveConversation(**{**row, "last_body": json.loads(row["last_body"])}) for row in rows]


def mark_takeover(db: Connection, conversation_id: str, session_id: str, operator: str) -> None:
    """Record that ``operator`` took the conversation over, on its newest switch and on the stay it opened.

    Both get the reason code OPERATOR_TAKEOVER; the stay is in that operator's hands.
    """
    with transaction(db):
        db.execute(MARK_SWITCH, {"conversation": conversation_id})
        db.execute(MARK_STAY, {"stay": session_id, "operator": operator})


def list_switches(db: Connection, since: float, until: float) -> list[Switch]:
    """Return the switches made in [since, until), oldest first."""
    return [Switch(**row) for row in db.execute(LIST_SWITCHES, {"since": since, "until": until}).mappings()]


def find_latest_switch(db: Connection, conversation_id: str) -> Switch | None:
    """Return the conversation's latest switch with its envelope, or None if it never changed hosts."""
    row = db.execute(LATEST_SWITCH, {"conversation": conversation_id}).mappings().first()
    if row is None:
        return None
    envelope = json.loads(row["envelope"]) if row["envelope"] else None
    return Switch(**{**row, "envelope": envelope})


def list_stays_between(db: Connection, since: float, until: float) -> list[Stay]:
    """Return the desk stays opened in [since, until), oldest first."""
    rows = db.execute(LIST_STAYS_BETWEEN, {"since": since, "until": until}).mappings()
    return [Stay(**row) for row in rows]


def count_contained(db: Connection, since: float, until: float) -> tuple[int, int]:
    """Return (conversations started in [since, until) in which the person wrote, those never at a desk)."""
    total, contained = db.execute(COUNT_CONTAINED, {"since": since, "until": until}).one()
    return int(total), int(contained)
