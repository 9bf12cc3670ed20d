"""Keep operator logins on the server, so logging out, a new password or idling ends them.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Time = sa.Float()


def upgrade() -> None:
    op.create_table(
        "operator_session",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("password_fingerprint", sa.Text, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("last_seen_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
    )
    op.create_index("operator_session_by_expiry", "operator_session", ["expires_at"])
    op.create_index("operator_session_by_last_seen", "operator_session", ["last_seen_at"])


def downgrade() -> None:
    op.drop_table("operator_session")
