"""Stays at a human desk: the Parlant session of each, how far it was relayed, who handles it."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .conversations import add_message, last_message_id, lock_conversation
from .engine import transaction
from .schema import conversation, desk_event, desk_notice, desk_session, desk_typing

stay = desk_session.c
# The reason code of a stay (and of the switch to it) an operator opened by taking a bot's conversation over.
OPERATOR_TAKEOVER = "operator_takeover"


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
    # Why the stay began, as a reason code (say, an operator's takeover); None when not known.
    reason_code: str | None = None


def insert_unless_present(table: sa.Table) -> sa.Insert:
    """Return an INSERT of one row (parameters named by column) that does nothing if its key is taken.

    Racing inserts of one key need a lock held around it (the conversation's):
    PostgreSQL would otherwise let both pass the check and fail the second.
    """
    row = sa.select(*(sa.bindparam(column.name, type_=column.type) for column in table.columns))
    taken = sa.exists().where(*(column == sa.bindparam(column.name) for column in table.primary_key.columns))
    return sa.insert(table).from_select([column.name for column in table.columns], row.where(~taken))


# Built once, like the conversation statements. SQLAlchemy keeps the names of
# the updated table's columns for its own parameters, hence "stay" and "conversation".
this_stay = stay.session_id == sa.bindparam("stay")
of_conversation = stay.conversation_id == sa.bindparam("conversation")
SUPERSEDE = sa.update(desk_session).where(of_conversation, stay.closed_at.is_(None)).values(
    closed_at=sa.bindparam("now"), outcome="superseded"
)
INSERT_STAY = sa.insert(desk_session)
SELECT_STAYS = sa.select(desk_session)
FIND_STAY = SELECT_STAYS.where(this_stay)
FIND_OPEN_STAY = SELECT_STAYS.where(of_conversation, stay.closed_at.is_(None)).order_by(
    stay.opened_at.desc()
).limit(1)
LIST_OPEN_STAYS = SELECT_STAYS.where(stay.closed_at.is_(None)).order_by(stay.opened_at)
LIST_OPEN_STAY_IDS = sa.select(stay.session_id).where(stay.closed_at.is_(None))
LIST_STAYS_SINCE = SELECT_STAYS.where(stay.opened_at >= sa.bindparam("since")).order_by(stay.opened_at)
LIST_CONVERSATION_STAYS = SELECT_STAYS.where(of_conversation).order_by(stay.opened_at)
NEXT_OFFSET = sa.select(stay.next_offset).where(this_stay)
CLEAR_OLDER_TYPING = sa.delete(desk_typing).where(
    desk_typing.c.session_id == sa.bindparam("stay"),
    desk_typing.c.event_offset < sa.bindparam("offset"),
)
INSERT_TYPING = insert_unless_present(desk_typing)
RELAYED_OFFSETS = sa.select(desk_event.c.event_offset).where(
    desk_event.c.session_id == sa.bindparam("stay"),
    desk_event.c.event_offset.in_(sa.bindparam("offsets", expanding=True)),
)
INSERT_EVENT = sa.insert(desk_event)
# next_offset only moves forward, whichever relay finishes last.
furthest = sa.case((stay.next_offset < sa.bindparam("reached"), sa.bindparam("reached")),
                   else_=stay.next_offset)
ADVANCE = sa.update(desk_session).where(this_stay).values(next_offset=furthest)
ADVANCE_AND_ANSWER = ADVANCE.values(first_reply_at=sa.func.coalesce(stay.first_reply_at, sa.bindparam("now")))
TAKE = sa.update(desk_session).where(this_stay).values(taken_by=sa.bindparam("operator"))
TAKE_IF_FREE = TAKE.where(stay.taken_by.is_(None))
TAKEN_BY = sa.select(stay.taken_by).where(this_stay)
CLOSE = sa.update(desk_session).where(this_stay, stay.closed_at.is_(None)).values(
    closed_at=sa.bindparam("now"), outcome=sa.bindparam("ending")
)
# Nobody waits in a stay an operator opened by taking a conversation over: it holds no place in the queue.
QUEUE_POSITION = sa.select(sa.func.count()).select_from(desk_session).where(
    stay.host_id == sa.bindparam("host_id"), stay.closed_at.is_(None), stay.first_reply_at.is_(None),
    stay.opened_at <= sa.bindparam("opened_at"),
    sa.or_(stay.reason_code.is_(None), stay.reason_code != OPERATOR_TAKEOVER),
)
REPLY_WAITS = sa.select(stay.first_reply_at - stay.opened_at).where(
    stay.host_id == sa.bindparam("host_id"), stay.opened_at >= sa.bindparam("since"),
    stay.first_reply_at.is_not(None),
)
TELL_NO_ANSWER = sa.update(desk_session).where(this_stay, stay.no_answer_told_at.is_(None)).values(
    no_answer_told_at=sa.bindparam("now")
)
TYPING = sa.select(desk_typing.c.name, desk_typing.c.until).where(
    desk_typing.c.session_id == sa.bindparam("stay"), desk_typing.c.until > sa.bindparam("now")
)
# The lock of lock_conversation, found from the stay.
LOCK_STAY_CONVERSATION = sa.update(conversation).where(
    conversation.c.id == sa.select(stay.conversation_id).where(this_stay).scalar_subquery()
).values(updated_at=sa.bindparam("now"))
INSERT_NOTICE = insert_unless_present(desk_notice)
# The preserve_rowcount option keeps the count of rows an INSERT ... SELECT wrote.
COUNTED = {"preserve_rowcount": True}


def open_stay(
    db: Connection, session_id: str, conversation_id: str, host_id: str,
    from_host: str, reason: str | None, *, reason_code: str | None = None,
) -> Stay:
    """Record a new desk stay; any stay still open for the conversation is closed first.

    ``reason_code`` is the handoff envelope's reason for the stay, when it is known.
    """
    now = time.time()
    with transaction(db):
        lock_conversation(db, conversation_id, now)
        db.execute(SUPERSEDE, {"conversation": conversation_id, "now": now})
        opened = Stay(
            session_id, conversation_id, host_id, from_host, reason, opened_at=now,
            handoff_message_id=last_message_id(db, conversation_id), next_offset=0, taken_by=None,
            first_reply_at=None, closed_at=None, outcome=None, no_answer_told_at=None,
            reason_code=reason_code,
        )
        db.execute(INSERT_STAY, asdict(opened))
    return opened


def _stays(db: Connection, query: sa.Select, **parameters: Any) -> list[Stay]:
    return [Stay(**row) for row in db.execute(query, parameters).mappings()]


def find_stay(db: Connection, session_id: str) -> Stay | None:
    found = _stays(db, FIND_STAY, stay=session_id)
    return found[0] if found else None


def find_open_stay(db: Connection, conversation_id: str) -> Stay | None:
    """Return the conversation's current desk stay, or None if it is not at a desk."""
    found = _stays(db, FIND_OPEN_STAY, conversation=conversation_id)
    return found[0] if found else None


def list_stays(db: Connection, *, open_only: bool = True, since: float = 0.0) -> list[Stay]:
    return _stays(db, LIST_OPEN_STAYS) if open_only else _stays(db, LIST_STAYS_SINCE, since=since)


def list_open_stay_ids(db: Connection) -> list[str]:
    """Return the session ids of every open stay (what the stay readers' sweep needs, and no more)."""
    return list(db.execute(LIST_OPEN_STAY_IDS).scalars())


def list_conversation_stays(db: Connection, conversation_id: str) -> list[Stay]:
    return _stays(db, LIST_CONVERSATION_STAYS, conversation=conversation_id)


def store_stay_events(
    db: Connection, desk: Stay, messages: list[tuple[int, dict]], next_offset: int,
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
    now = time.time()
    this = {"stay": desk.session_id}
    with transaction(db):
        # Relays of one stay run one at a time from here on, so each sees what the last stored.
        lock_conversation(db, desk.conversation_id, now)
        if typing is not None:
            furthest_yet = db.execute(NEXT_OFFSET, this).scalar()
            if furthest_yet is not None and next_offset >= furthest_yet:
                offset, name, until = typing
                db.execute(CLEAR_OLDER_TYPING, {**this, "offset": offset})
                if name:
                    db.execute(INSERT_TYPING, {"session_id": desk.session_id, "event_offset": offset,
                                               "name": name, "until": until})
        offsets = [offset for offset, _body in messages]
        seen = set(db.execute(RELAYED_OFFSETS, {**this, "offsets": offsets}).scalars() if offsets else ())
        stored = 0
        for offset, body in messages:
            if offset in seen:
                continue
            seen.add(offset)
            message = add_message(db, desk.conversation_id, "bot", desk.host_id, body)
            db.execute(INSERT_EVENT, {"session_id": desk.session_id, "event_offset": offset,
                                      "message_id": message.id})
            stored += 1
        advance = ADVANCE_AND_ANSWER if stored else ADVANCE
        db.execute(advance, {**this, "reached": next_offset, "now": now})
    return stored


def take_stay(db: Connection, session_id: str, operator: str, *, force: bool) -> str | None:
    """Mark who handles a desk stay (only if nobody does yet, unless forced); return who does."""
    db.execute(TAKE if force else TAKE_IF_FREE, {"stay": session_id, "operator": operator})
    return db.execute(TAKEN_BY, {"stay": session_id}).scalar()


def close_stay(db: Connection, session_id: str, outcome: str) -> bool:
    """End a desk stay; return False if it had already ended."""
    closed = db.execute(CLOSE, {"stay": session_id, "ending": outcome, "now": time.time()})
    return closed.rowcount == 1


def queue_position(db: Connection, stay: Stay) -> int:
    """Return the stay's place among those at its desk still waiting for a first reply (1 = next)."""
    return db.execute(QUEUE_POSITION, {"host_id": stay.host_id, "opened_at": stay.opened_at}).scalar_one()


def recent_reply_waits(db: Connection, host_id: str, since: float) -> list[float]:
    """Return the seconds each stay at a desk since ``since`` waited for its first human reply."""
    return list(db.execute(REPLY_WAITS, {"host_id": host_id, "since": since}).scalars())


def mark_no_answer_told(db: Connection, session_id: str) -> bool:
    """Record that the person was told nobody answered; False if they had been already."""
    return db.execute(TELL_NO_ANSWER, {"stay": session_id, "now": time.time()}).rowcount == 1


def find_stay_typing(db: Connection, session_id: str, now: float) -> dict[str, Any] | None:
    """Return who is typing in a stay and until when, or None if nobody is (or it has run out)."""
    row = db.execute(TYPING, {"stay": session_id, "now": now}).first()
    return {"name": row.name, "until": row.until} if row else None


def mark_stay_notice(db: Connection, session_id: str, kind: str) -> bool:
    """Record that a once-per-stay notice was decided on; False if it had been already."""
    now = time.time()
    with transaction(db):
        db.execute(LOCK_STAY_CONVERSATION, {"stay": session_id, "now": now})
        result = db.execute(
            INSERT_NOTICE, {"session_id": session_id, "kind": kind, "at": now}, execution_options=COUNTED
        )
    return result.rowcount == 1
