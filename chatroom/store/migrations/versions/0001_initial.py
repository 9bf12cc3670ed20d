"""The schema the store had before versions were kept.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit on PostgreSQL; INTEGER on SQLite, where only that spelling makes the rowid.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.Float()


def upgrade() -> None:
    op.create_table(
        "conversation",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("host_id", sa.Text, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )
    op.create_table(
        "switch",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
        sa.Column("from_host", sa.Text, nullable=False),
        sa.Column("to_host", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", Time, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "message",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
        sa.Column("role", sa.Text, sa.CheckConstraint("role IN ('user', 'bot', 'notice')"), nullable=False),
        sa.Column("host_id", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("at", Time, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("message_by_conversation", "message", ["conversation_id", "id"])
    op.create_index("switch_by_conversation", "switch", ["conversation_id", "id"])
    op.create_table(
        "desk_session",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
        sa.Column("host_id", sa.Text, nullable=False),
        sa.Column("from_host", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("opened_at", Time, nullable=False),
        sa.Column("handoff_message_id", sa.BigInteger, nullable=False),
        sa.Column("next_offset", sa.Integer, nullable=False, server_default="0"),
        sa.Column("taken_by", sa.Text),
        sa.Column("first_reply_at", Time),
        sa.Column("closed_at", Time),
        sa.Column("outcome", sa.Text),
        sa.Column("no_answer_told_at", Time),
    )
    op.create_index("desk_session_by_conversation", "desk_session", ["conversation_id", "closed_at"])
    op.create_table(
        "desk_event",
        sa.Column("session_id", sa.Text, sa.ForeignKey("desk_session.session_id"), primary_key=True),
        sa.Column("event_offset", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.BigInteger, sa.ForeignKey("message.id"), nullable=False),
    )
    op.create_table(
        "desk_typing",
        sa.Column("session_id", sa.Text, sa.ForeignKey("desk_session.session_id"), primary_key=True),
        sa.Column("event_offset", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("until", Time, nullable=False),
    )
    op.create_table(
        "desk_notice",
        sa.Column("session_id", sa.Text, sa.ForeignKey("desk_session.session_id"), primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("at", Time, nullable=False),
    )


def downgrade() -> None:
    for table in ("desk_notice", "desk_typing", "desk_event", "desk_session", "message", "switch"):
        op.drop_table(table)
    op.drop_table("conversation")
