"""Index every query the store runs: the queue, a desk's waits, figures since a time, the last user message.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = {
    "message_by_conversation_role": ("message", ["conversation_id", "role", "id"]),
    "switch_by_time": ("switch", ["at"]),
    "desk_session_open": ("desk_session", ["closed_at", "opened_at"]),
    "desk_session_waiting": ("desk_session", ["host_id", "closed_at", "first_reply_at", "opened_at"]),
    "desk_session_by_host": ("desk_session", ["host_id", "opened_at"]),
    "desk_session_by_time": ("desk_session", ["opened_at"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
