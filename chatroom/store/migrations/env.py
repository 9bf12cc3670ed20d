"""Runs the revisions on the connection the store hands over (see ``upgrade``)."""
from alembic import context

from chatroom.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "chatroom migrations run on the store's connection: call chatroom.store.upgrade(engine) "
        "(the chatroom does at start) instead of the alembic command"
    )
# Batch mode lets generated revisions alter SQLite tables (copy and swap).
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
