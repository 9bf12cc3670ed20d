-- The chatroom's schema before versions were kept: its store ran this script on every connection.
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
