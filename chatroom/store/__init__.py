"""The chatroom's database: which host owns each conversation, its transcript, and stays at a desk.

The app setting ``DATABASE`` is a SQLite file path or a database URL
(``postgresql://…``, from ``$DATABASE_URL``). Each process has one pooled
engine per app; a request borrows one connection (``get_db``) and gives it back
when it ends. ``conversations`` holds the routing table, switches and
transcript; ``stays`` holds each stay at a human desk; ``console`` holds operators' notes
and what the console reads for its figures; ``operators`` holds the operators' logins.
Callers use the names re-exported here; every function takes the request's connection first.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy.engine import Connection, Engine

from .console import (
    ActiveConversation,
    Note,
    Switch,
    add_note,
    count_contained,
    find_latest_switch,
    list_active_conversations,
    list_notes,
    list_stays_between,
    list_switches,
    mark_takeover,
)
from .conversations import (
    CHOICE,
    Conversation,
    Message,
    PendingSwitch,
    add_message,
    begin_switch,
    count_routes,
    create_conversation,
    end_switch,
    find_button,
    find_conversation,
    find_pending_switch,
    last_message_id,
    last_user_text,
    list_messages,
    list_pending_switches,
    recent_switches,
    switch_host,
)
from .engine import create_engine, database_url, transaction
from .migrations import upgrade
from .operators import (
    OperatorSession,
    create_operator_session,
    end_lapsed_operator_sessions,
    end_operator_session,
    find_operator_session,
    see_operator_session,
)
from .stays import (
    OPERATOR_TAKEOVER,
    Stay,
    close_stay,
    find_open_stay,
    find_stay,
    find_stay_typing,
    list_conversation_stays,
    list_open_stay_ids,
    list_stays,
    mark_no_answer_told,
    mark_stay_notice,
    open_stay,
    queue_position,
    recent_reply_waits,
    store_stay_events,
    take_stay,
)

EXTENSION = "chatroom.store"
_engines_guard = threading.Lock()


@dataclass(frozen=True)
class _ProcessEngine:
    engine: Engine
    pid: int


def get_engine(app: Flask | None = None) -> Engine:
    """Return this process's engine for the app's database, making one on first use and after a fork."""
    app = app or current_app._get_current_object()
    held = app.extensions.get(EXTENSION)
    if held is not None and held.pid == os.getpid():
        return held.engine
    with _engines_guard:
        held = app.extensions.get(EXTENSION)
        if held is None or held.pid != os.getpid():
            if held is not None:
                # Inherited from the parent: forget its connections without closing them under it.
                held.engine.dispose(close=False)
            held = _ProcessEngine(create_engine(app.config["DATABASE"]), os.getpid())
            app.extensions[EXTENSION] = held
    return held.engine


def get_db() -> Connection:
    """Return this request's database connection, borrowed from the pool on first use."""
    if "db" not in g:
        g.db = get_engine().connect()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """Give this request's connection back to the pool (at teardown, or before a long wait)."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    """Bring the app's database to the newest schema and return connections at each request's end."""
    engine = get_engine(app)
    upgrade(engine)
    # Workers forked after this start with an empty pool of their own.
    engine.dispose()
    app.teardown_appcontext(close_db)


__all__ = [
    "ActiveConversation", "CHOICE", "Connection", "Conversation", "Message", "Note",
    "OPERATOR_TAKEOVER", "OperatorSession", "PendingSwitch", "Stay", "Switch", "add_message",
    "add_note", "begin_switch", "close_db", "close_stay", "count_contained", "count_routes",
    "create_conversation", "create_operator_session", "database_url", "end_lapsed_operator_sessions",
    "end_operator_session", "end_switch", "find_button", "find_conversation", "find_latest_switch",
    "find_open_stay", "find_operator_session", "find_pending_switch", "find_stay", "find_stay_typing",
    "get_db", "get_engine", "init_app", "last_message_id", "last_user_text", "list_active_conversations",
    "list_conversation_stays", "list_messages", "list_notes", "list_open_stay_ids",
    "list_pending_switches", "list_stays", "list_stays_between", "list_switches", "mark_no_answer_told",
    "mark_stay_notice", "mark_takeover",
    "open_stay", "queue_position", "recent_reply_waits", "recent_switches", "see_operator_session",
    "store_stay_events", "switch_host", "take_stay", "transaction", "upgrade",
]
