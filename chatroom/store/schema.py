"""The chatroom's tables as the queries see them: the schema at the newest migration.

Times are seconds since the epoch (float). Message and switch ids count up for
ever; a message id is also the id of the live event that carries it.
"""
from __future__ import annotations

import sqlalchemy as sa

# A 64-bit id on PostgreSQL; on SQLite the column must be spelled INTEGER to be
# the rowid, which AUTOINCREMENT then never reuses.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.Float()

metadata = sa.MetaData()

conversation = sa.Table(
    "conversation", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("host_id", sa.Text, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    # Last write of any kind; the update is also the conversation's write lock.
    sa.Column("updated_at", Time, nullable=False),
    # Conversations active lately (the console watches them), and started in a period (stats).
    sa.Index("conversation_by_activity", "updated_at"),
    sa.Index("conversation_by_creation", "created_at"),
)

switch = sa.Table(
    "switch", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
    sa.Column("from_host", sa.Text, nullable=False),
    sa.Column("to_host", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", Time, nullable=False),
    # One of the handoff envelope's reasons, or an operator's takeover; anything else counts as unspecified.
    sa.Column("reason_code", sa.Text),
    # The whole handoff envelope, as JSON text.
    sa.Column("envelope", sa.Text),
    sa.Index("switch_by_conversation", "conversation_id", "id"),
    sa.Index("switch_by_time", "at"),
    sqlite_autoincrement=True,
)

message = sa.Table(
    "message", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
    sa.Column("role", sa.Text, sa.CheckConstraint("role IN ('user', 'bot', 'notice')"), nullable=False),
    sa.Column("host_id", sa.Text),
    # The message as JSON text: text, buttons, image, custom payload.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Index("message_by_conversation", "conversation_id", "id"),
    sa.Index("message_by_conversation_role", "conversation_id", "role", "id"),
    sqlite_autoincrement=True,
)

# One row per stay at a human desk (a Parlant session); closed_at is set when it ends.
desk_session = sa.Table(
    "desk_session", metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
    sa.Column("host_id", sa.Text, nullable=False),
    sa.Column("from_host", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("opened_at", Time, nullable=False),
    # The transcript up to this message id is what the bots said before the handoff.
    sa.Column("handoff_message_id", sa.BigInteger, nullable=False),
    # The first Parlant event offset not yet relayed to the transcript.
    sa.Column("next_offset", sa.Integer, nullable=False, server_default="0"),
    sa.Column("taken_by", sa.Text),
    sa.Column("first_reply_at", Time),
    sa.Column("closed_at", Time),
    sa.Column("outcome", sa.Text),
    # When the person was told nobody has answered yet (once per stay).
    sa.Column("no_answer_told_at", Time),
    # Why the stay began, as a reason code (an operator's takeover is one).
    sa.Column("reason_code", sa.Text),
    sa.Index("desk_session_by_conversation", "conversation_id", "closed_at"),
    # The queue: open stays by arrival.
    sa.Index("desk_session_open", "closed_at", "opened_at"),
    # A stay's place in its desk's queue.
    sa.Index("desk_session_waiting", "host_id", "closed_at", "first_reply_at", "opened_at"),
    # A desk's recent reply times, and every desk's figures since a time.
    sa.Index("desk_session_by_host", "host_id", "opened_at"),
    sa.Index("desk_session_by_time", "opened_at"),
)

# Each Parlant event is stored in the transcript at most once, whoever relays it first.
desk_event = sa.Table(
    "desk_event", metadata,
    sa.Column("session_id", sa.Text, sa.ForeignKey("desk_session.session_id"), primary_key=True),
    sa.Column("event_offset", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.BigInteger, sa.ForeignKey("message.id"), nullable=False),
)

# Who is typing a reply in a stay, from the latest operator status event relayed (never transcript).
desk_typing = sa.Table(
    "desk_typing", metadata,
    sa.Column("session_id", sa.Text, sa.ForeignKey("desk_session.session_id"), primary_key=True),
    sa.Column("event_offset", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("until", Time, nullable=False),
)

# Notices the chatroom gives once per stay (say, "nobody is online" on arrival).
desk_notice = sa.Table(
    "desk_notice", metadata,
    sa.Column("session_id", sa.Text, sa.ForeignKey("desk_session.session_id"), primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("at", Time, nullable=False),
)

# A handoff under way: written before the target is told, removed with the switch. One left
# behind by a crash is finished when the chatroom next starts or the person next writes.
pending_switch = sa.Table(
    "pending_switch", metadata,
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), primary_key=True),
    sa.Column("from_host", sa.Text, nullable=False),
    sa.Column("to_host", sa.Text, nullable=False),
    # The handoff envelope as JSON text (it names the handoff, so a retried arrival is the same one).
    sa.Column("envelope", sa.Text, nullable=False),
    sa.Column("started_at", Time, nullable=False),
)

# Notes operators leave on a conversation for each other: shown in the console only, never to the
# person, never sent to a host or a desk. A note sits after the message that was last when it was written.
operator_note = sa.Table(
    "operator_note", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
    sa.Column("operator", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("after_message_id", sa.BigInteger, nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Index("operator_note_by_conversation", "conversation_id", "id"),
    sqlite_autoincrement=True,
)

# One row per operator login. The cookie holds a random token; only its SHA-256 is kept here,
# so a copy of the database logs nobody in. A row ends at logout, after expires_at, after
# the idle timeout since last_seen_at, or once the operator's password is no longer the one
# password_fingerprint was made from.
operator_session = sa.Table(
    "operator_session", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("operator", sa.Text, nullable=False),
    sa.Column("password_fingerprint", sa.Text, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_seen_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    # Sweeping out the logins that ended.
    sa.Index("operator_session_by_expiry", "expires_at"),
    sa.Index("operator_session_by_last_seen", "last_seen_at"),
)
