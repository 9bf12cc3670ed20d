"""Operators watching conversations a bot has, stepping in, and leaving notes for each other.

The console lists conversations now with a bot (any host that is not a desk)
that had a message in the last ``WATCH_MINUTES``. An operator may open one
read-only, take it over (``Router.take_over``), and leave notes on any
conversation. Notes live in their own table: they are shown in the console and
streamed to other consoles, never to the person, a bot or a desk.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from flask import current_app

from handoff.config import HandoffConfig

from . import events, store

logger = logging.getLogger(__name__)

# The console lists at most this many conversations with a bot, the most recently active first.
LIST_LIMIT = 50


def bot_host_ids(config: HandoffConfig) -> list[str]:
    return [host.id for host in config.hosts if host.kind != "parlant"]


def desks_json(config: HandoffConfig) -> list[dict[str, str]]:
    """Return the desks an operator can take a conversation over to."""
    return [{"id": host.id, "title": host.title} for host in config.hosts if host.kind == "parlant"]


def last_said(role: str, body: dict[str, Any]) -> str:
    """Return a line that stands for a message: its text, else what it carries."""
    if body.get("text"):
        return str(body["text"])
    if body.get("buttons"):
        return "[buttons] " + " | ".join(str(button.get("title", "")) for button in body["buttons"])
    if body.get("image"):
        return "[image]"
    return f"[{role}]"


def live_bot_conversations(connection: store.Connection, config: HandoffConfig) -> list[dict[str, Any]]:
    """Return the conversations now with a bot that were active lately, the most recent first."""
    since = time.time() - float(current_app.config["WATCH_MINUTES"]) * 60
    found = store.list_active_conversations(connection, bot_host_ids(config), since, LIST_LIMIT)
    titles = {host.id: host.title for host in config.hosts}
    return [
        {
            "conversation_id": active.id,
            "host": {"id": active.host_id, "title": titles.get(active.host_id, active.host_id)},
            "started_at": active.created_at,
            "active_at": active.updated_at,
            "last": {"role": active.last_role, "text": last_said(active.last_role, active.last_body)},
        }
        for active in found
    ]


def watch_json(connection: store.Connection, config: HandoffConfig) -> dict[str, Any]:
    """Return what the console lists beside the queue: the live conversations with a bot."""
    return {
        "bots": live_bot_conversations(connection, config),
        "watch_minutes": float(current_app.config["WATCH_MINUTES"]),
    }


def conversation_extras(
    connection: store.Connection, config: HandoffConfig, conversation: store.Conversation
) -> dict[str, Any]:
    """Return what the console shows beside a conversation's transcript: notes, and whether a bot has it."""
    host = config.find_host(conversation.host_id)
    return {
        "with_bot": host is not None and host.kind != "parlant",
        "desks": desks_json(config),
        "notes": [note.to_json() for note in store.list_notes(connection, conversation.id)],
    }


def add_note(
    connection: store.Connection, conversation: store.Conversation, operator: str, text: str
) -> None:
    """Keep an operator's note and show it on every console that has the conversation open."""
    store.add_note(connection, conversation.id, operator, text)
    logger.info("conversation=%s note by %s", conversation.id, operator)
    try:
        # Consoles only: the person's streams listen on the conversation's own topic.
        current_app.extensions["shared"].bus.publish(events.CONSOLE_TOPIC, {"type": "note"})
    except Exception as exc:  # noqa: BLE001 - the note is stored; consoles catch up on their heartbeat
        logger.warning("could not announce a note on conversation=%s: %s", conversation.id, exc)
