"""For the console: reason codes and envelopes of switches, takeovers, operators' notes, activity indexes.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.Float()

INDEXES = {
    # Conversations active lately (the console's list of live bot conversations).
    "conversation_by_activity": ("conversation", ["updated_at"]),
    # Conversations started in a period (containment).
    "conversation_by_creation": ("conversation", ["created_at"]),
}


def upgrade() -> None:
    # One of the envelope's reasons (or an operator's takeover); the whole envelope as JSON text.
    op.add_column("switch", sa.Column("reason_code", sa.Text))
    op.add_column("switch", sa.Column("envelope", sa.Text))
    op.add_column("desk_session", sa.Column("reason_code", sa.Text))
    op.create_table(
        "operator_note",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversation.id"), nullable=False),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("after_message_id", sa.BigInteger, nullable=False),
        sa.Column("at", Time, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("operator_note_by_conversation", "operator_note", ["conversation_id", "id"])
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
    op.drop_index("operator_note_by_conversation", table_name="operator_note")
    op.drop_table("operator_note")
    with op.batch_alter_table("desk_session") as batch:
        batch.drop_column("reason_code")
    with op.batch_alter_table("switch") as batch:
        batch.drop_column("envelope")
        batch.drop_column("reason_code")
