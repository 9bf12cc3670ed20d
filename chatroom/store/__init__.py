"""The chatroom's database: which host owns each conversation, its transcript, and stays at a desk.

``conversations`` holds the routing table, switches and transcript; ``stays``
holds each stay at a human desk. Callers use the names re-exported here.
"""
from __future__ import annotations

import sqlite3

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



from .conversations import (  # noqa: E402
    Conversation,
    Message,
    add_message,
    count_routes,
    create_conversation,
    find_button,
    find_conversation,
    last_message_id,
    last_user_text,
    list_messages,
    switch_host,
)
from .stays import (  # noqa: E402
    Stay,
    close_stay,
    find_open_stay,
    find_stay,
    find_stay_typing,
    list_conversation_stays,
    list_stays,
    mark_no_answer_told,
    mark_stay_notice,
    open_stay,
    queue_position,
    recent_reply_waits,
    store_stay_events,
    take_stay,
)

__all__ = [
    "Conversation", "Message", "Stay", "add_message", "close_stay", "connect", "count_routes",
    "create_conversation", "last_user_text",
    "find_button", "find_conversation", "find_open_stay", "find_stay", "find_stay_typing", "get_db",
    "init_app", "last_message_id", "list_conversation_stays", "list_messages", "list_stays",
    "mark_no_answer_told", "mark_stay_notice", "open_stay", "queue_position", "recent_reply_waits",
    "store_stay_events", "switch_host", "take_stay",
]
