"""A person's stay at a human desk: open it, relay the operators' messages, tell the person how it goes.

A desk (a host of ``kind: parlant``) keeps one Parlant session per stay: the
chatroom opens it in manual mode on arrival, posts the person's messages as
``customer`` events, and relays ``human_agent`` and
``human_agent_on_behalf_of_ai_agent`` message events back into the transcript,
reading them with ``list_events(min_offset, wait_for_data)``. Parlant's session
is the source of truth for what the operators said; the chatroom keeps a copy
so the page, a reload and the console read one transcript.

While an operator types, the console has the chatroom post ``status`` events
("typing", then "ready" if they stop) from the operator's source; they wake the
same long poll, and the relay keeps only the latest as "who is typing" (never
in the transcript).
"""
from __future__ import annotations

import logging
import sqlite3
import statistics
import time
from datetime import datetime
from typing import Any

from flask import current_app

from handoff.config import HandoffConfig, Host, current_config

from . import parlant_client, store
from .web import http_session

logger = logging.getLogger(__name__)

TYPING = "typing"
READY = "ready"
# A "typing" status shows for this long unless another one follows (the console sends one every 2 s).
TYPING_SECONDS = 5.0
# What the person reads when a desk takes them (the operators' own words come later).
CONNECTING = "Connecting you with our {title}… someone will answer here shortly."
CLOSED = "{title} closed this conversation. Write again any time to reach them."
NOBODY_ONLINE = (
    "Nobody from {title} is online right now. Leave a message here: it stays in their queue "
    "and they will answer here when they are back. Or go back to {back_to} with the "
    "“Back to {back_to}” button."
)
NO_ANSWER = (
    "Nobody from {title} has answered yet. You can keep waiting, leave a message here "
    "for them to answer when they are back, or go back to {back_to}."
)
WROTE_AGAIN = "wrote again after the conversation was closed"
# What a custom event says when the chatroom ends a stay (it also wakes anyone long-polling).
STAY_ENDED = "stay_ended"


def desk_client(host: Host) -> parlant_client.Parlant:
    """Return a client for a desk's Parlant API, with the app's token and timeout."""
    timeout = float(current_app.config["TURN_TIMEOUT"])
    return parlant_client.Parlant(host.url, current_app.config["DESK_API_TOKEN"], http_session(), timeout)


def transcript_json(messages: list[store.Message], config: HandoffConfig) -> list[dict[str, Any]]:
    """Return the transcript as the session's metadata keeps it: who said what, in order."""
    lines = []
    for message in messages:
        host = config.find_host(message.host_id) if message.host_id else None
        line = {"role": message.role, "host": message.host_id, "text": message.body.get("text", "")}
        if message.role == "bot" and host is not None:
            line["title"] = host.title
        if message.body.get("buttons"):
            line["buttons"] = [button.get("title", "") for button in message.body["buttons"]]
        if message.body.get("image"):
            line["image"] = message.body["image"]
        lines.append(line)
    return lines


def open_stay(
    connection: sqlite3.Connection, client: parlant_client.Parlant, config: HandoffConfig, desk: Host,
    conversation: store.Conversation, from_host: Host | None, reason: str | None,
) -> store.Stay:
    """Open a manual-mode Parlant session for a conversation arriving at ``desk``.

    Its title and metadata name the conversation, the host handed from and the
    reason; its metadata holds the whole transcript so far.
    """
    agents = client.list_agents()
    if not agents:
        raise parlant_client.ParlantError(f"{client.url} has no agent to stand for the team")
    from_title = from_host.title if from_host else "the chatroom"
    metadata = {
        "conversation_id": conversation.id,
        "from_host": from_host.id if from_host else None,
        "from_host_url": from_host.url if from_host else None,
        "from_title": from_title,
        "reason": reason,
        "transcript": transcript_json(store.list_messages(connection, conversation.id), config),
    }
    title = f"{from_title}: {reason}" if reason else f"From {from_title}"
    session = client.create_session(
        agent_id=agents[0]["id"], title=title[:200], metadata=metadata, labels=["handoff"]
    )
    if session.get("mode") != parlant_client.MANUAL:
        # The desk makes every session manual; a stock Parlant server needs telling.
        session = client.update_session(session["id"], mode=parlant_client.MANUAL)
    if session.get("mode") != parlant_client.MANUAL:
        raise parlant_client.ParlantError(f"{client.url}: session {session.get('id')} is not in manual mode")
    return store.open_stay(
        connection, session["id"], conversation.id, desk.id,
        from_host.id if from_host else "", reason,
    )


def current_stay(
    connection: sqlite3.Connection, config: HandoffConfig, conversation: store.Conversation
) -> tuple[Host, store.Stay] | None:
    """Return the desk a conversation is at and its open stay, or None if it is with a bot."""
    host = config.find_host(conversation.host_id)
    if host is None or host.kind != "parlant":
        return None
    stay = store.find_open_stay(connection, conversation.id)
    if stay is None or stay.host_id != host.id:
        return None
    return host, stay


def operator_message(event: dict[str, Any]) -> dict[str, Any] | None:
    """Return the transcript body for an operator's message event, or None for any other event."""
    if event.get("kind") != "message" or event.get("deleted"):
        return None
    if event.get("source") not in parlant_client.OPERATOR_SOURCES:
        return None
    data = event.get("data") or {}
    text = data.get("message")
    if not isinstance(text, str) or not text:
        return None
    body: dict[str, Any] = {"text": text}
    if event["source"] == parlant_client.HUMAN_AGENT:
        # A person writing as themselves is shown by name; as the assistant, like the assistant.
        name = (data.get("participant") or {}).get("display_name")
        body["sender"] = str(name) if name else "Support"
    return body


def created_at(event: dict[str, Any], now: float) -> float:
    """Return when Parlant created an event (epoch seconds), or ``now`` if it does not say."""
    try:
        return min(now, datetime.fromisoformat(str(event["creation_utc"])).timestamp())
    except (KeyError, ValueError):
        return now


def typing_status(event: dict[str, Any], now: float) -> tuple[str | None, float] | None:
    """Return (name, until) for an operator's status event, with no name if it ends typing.

    None for any other event: Parlant's own statuses, customer events, custom events.
    """
    if event.get("kind") != "status" or event.get("source") not in parlant_client.OPERATOR_SOURCES:
        return None
    data = event.get("data") or {}
    extra = data.get("data")
    name = extra.get("name") if isinstance(extra, dict) else None
    if data.get("status") != TYPING or not isinstance(name, str) or not name:
        return None, 0.0
    return name[:80], created_at(event, now) + TYPING_SECONDS


def relay(
    connection: sqlite3.Connection, client: parlant_client.Parlant, stay: store.Stay, wait: int = 0
) -> int:
    """Copy operator messages that are new in Parlant into the transcript; return how many.

    Reads from the first offset not yet relayed, so nothing is skipped, and
    stores each event once, so nothing doubles, however many relays run. An
    operator's "typing" status (and the message or "ready" that ends it) wakes
    the wait too and updates who is typing.
    """
    events = client.list_events(stay.session_id, min_offset=stay.next_offset, wait_for_data=wait)
    if not events:
        return 0
    now = time.time()
    messages = []
    typing = None
    for event in sorted(events, key=lambda event: int(event["offset"])):
        offset = int(event["offset"])
        body = operator_message(event)
        if body is not None:
            messages.append((offset, body))
            typing = (offset, None, 0.0)
        status = typing_status(event, now)
        if status is not None:
            typing = (offset, *status)
    next_offset = max(int(event["offset"]) for event in events) + 1
    return store.store_stay_events(connection, stay, messages, next_offset, typing)


def send_typing(
    client: parlant_client.Parlant, stay: store.Stay, name: str, as_assistant: bool, typing: bool
) -> None:
    """Tell the session an operator is typing (or stopped), as themselves or as the assistant."""
    source = parlant_client.HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT if as_assistant else parlant_client.HUMAN_AGENT
    client.create_status_event(stay.session_id, TYPING if typing else READY, source, {"name": name})


def end_stay(client: parlant_client.Parlant, stay: store.Stay, outcome: str, operator: str) -> None:
    """Tell Parlant a stay ended (this also wakes every long poll on the session)."""
    client.update_session(stay.session_id, metadata={"outcome": outcome, "ended_by": operator})
    client.create_custom_event(stay.session_id, {"event": STAY_ENDED, "outcome": outcome, "by": operator})


def typing_json(connection, stay: store.Stay) -> dict[str, Any] | None:
    """Return who is typing a reply and until when (epoch s; seconds_left for the page's timer)."""
    now = time.time()
    typing = store.find_stay_typing(connection, stay.session_id, now)
    if typing is None:
        return None
    return {**typing, "seconds_left": round(typing["until"] - now, 1)}


# Operator presence lives in this process's memory ({name: (last seen, chosen state)}):
# several chatroom processes would each keep their own, and a restart forgets it.
# Operators seen by the console within this many seconds count as there (online or away).
PRESENCE_SECONDS = 30.0
ONLINE, AWAY, OFFLINE = "online", "away", "offline"
ESTIMATE_WINDOW = 7 * 86400


def presence_table() -> dict[str, tuple[float, str]]:
    return current_app.extensions.setdefault("desk_presence", {})


def see_operator(name: str, state: str | None = None) -> None:
    """Record that an operator's console is open; online unless they said away (or say so now)."""
    table = presence_table()
    if state is None:
        state = table.get(name, (0.0, ONLINE))[1]
    table[name] = (time.time(), state)


def forget_operator(name: str) -> None:
    """An operator logged out: offline at once."""
    presence_table().pop(name, None)


def operator_presence(name: str) -> str:
    """Return "online", "away", or "offline" (not seen for PRESENCE_SECONDS)."""
    seen, state = presence_table().get(name, (0.0, OFFLINE))
    return state if time.time() - seen < PRESENCE_SECONDS else OFFLINE


def operators_online() -> int:
    return sum(1 for name in list(presence_table()) if operator_presence(name) == ONLINE)


def desk_json(connection, host: Host, stay: store.Stay) -> dict[str, Any]:
    """Return what the page shows about a stay: queue place, estimated wait, where to go back to."""
    config = current_config()
    back_to = config.find_host(stay.from_host) or config.entry_host
    info: dict[str, Any] = {
        "title": host.title,
        "back_to": {"id": back_to.id, "title": back_to.title},
        "waiting": stay.first_reply_at is None,
        "operators_online": operators_online(),
    }
    if stay.first_reply_at is None:
        position = store.queue_position(connection, stay)
        waits = store.recent_reply_waits(connection, host.id, time.time() - ESTIMATE_WINDOW)
        info["position"] = position
        info["estimated_wait_seconds"] = statistics.median(waits) * position if waits else None
    return info


def tell_if_nobody_is_online(connection, conversation: store.Conversation) -> None:
    """On arrival at a desk (the page's first poll), tell the person at once if no operator is online."""
    found = current_stay(connection, current_config(), conversation)
    if found is None:
        return
    host, stay = found
    if stay.first_reply_at is not None or not store.mark_stay_notice(connection, stay.session_id, "arrival"):
        return
    if operators_online() == 0:
        back_to = current_config().find_host(stay.from_host) or current_config().entry_host
        store.add_message(connection, conversation.id, "notice", None, {
            "text": NOBODY_ONLINE.format(title=host.title, back_to=back_to.title),
        })


def tell_if_nobody_answers(connection, conversation: store.Conversation) -> None:
    """Once per stay, tell a person nobody has answered in time, and what they can do."""
    found = current_stay(connection, current_config(), conversation)
    if found is None:
        return
    host, stay = found
    limit = float(current_app.config["DESK_NO_ANSWER_AFTER"])
    if stay.first_reply_at is not None or time.time() - stay.opened_at < limit:
        return
    if store.mark_no_answer_told(connection, stay.session_id):
        back_to = current_config().find_host(stay.from_host) or current_config().entry_host
        store.add_message(connection, conversation.id, "notice", None, {
            "text": NO_ANSWER.format(title=host.title, back_to=back_to.title),
        })
