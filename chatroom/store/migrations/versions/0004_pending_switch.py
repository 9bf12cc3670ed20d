"""Journal each handoff under way, so one cut short by a crash is finished, not half-done.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_switch",
        sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), primary_key=True),
        sa.Column("from_host", sa.Text, nullable=False),
        sa.Column("to_host", sa.Text, nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pending_switch")
