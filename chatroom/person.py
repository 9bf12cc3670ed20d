"""The person's side: the page and the JSON API it uses."""
from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, session

from handoff.config import Host, current_config

from . import events, parlant_client, stays, store
from .routing import Router, Turn, turn_lock
from .shared import Busy, Unavailable
from .web import ApiError, client_address, host_json, read_after, read_text, refuse_over_limit

logger = logging.getLogger(__name__)
bp = Blueprint("person", __name__)

CONVERSATION_KEY = "conversation_id"
# Any white space (Unicode too) before typed text; Rasa strips it before looking for "/".
LEADING_SPACE = re.compile(r"^[\s\u200b\u2060\ufeff]+")
GONE = "This conversation has ended or expired; reload the page to start again."
# What operators read in a conversation whose person started over (the person never sees it again).
STARTED_OVER = "The person started a new conversation and left this one."


def state_json(conversation: store.Conversation, messages: list[store.Message]) -> dict[str, Any]:
    return {
        "host": host_json(conversation.host_id),
        "messages": [message.to_json() for message in messages],
    }


def session_conversation() -> store.Conversation | None:
    return store.find_conversation(store.get_db(), session.get(CONVERSATION_KEY))


def require_conversation() -> store.Conversation:
    conversation = session_conversation()
    if conversation is None:
        raise ApiError(409, GONE)
    return conversation


@bp.get("/")
def index():
    """Serve the chat page."""
    return render_template("person.html", max_chars=current_app.config["MAX_MESSAGE_CHARS"])


@bp.get("/healthz")
def healthz():
    """Answer the launcher's readiness check: 200 while the state shared by workers answers too."""
    if not current_app.extensions["shared"].healthy():
        return jsonify(status="shared state unreachable"), 503
    return jsonify(status="ok")


def refuse_busy_client() -> None:
    """Refuse with 429 once this client address has sent RATE_PER_CLIENT requests in the window."""
    refuse_over_limit("client", client_address(), current_app.config["RATE_PER_CLIENT"], "sending requests")


def refuse_too_many_new_conversations() -> None:
    refuse_over_limit(
        "new-conversation", client_address(), current_app.config["NEW_CONVERSATIONS_PER_CLIENT"],
        "starting conversations",
    )


def start_new_conversation() -> store.Conversation:
    """Start a conversation with the entry host for this browser (limits are checked before)."""
    # The id is the only key to a conversation, so it is random and lives in a signed cookie.
    conversation = store.create_conversation(
        store.get_db(), secrets.token_urlsafe(16), current_config().entry
    )
    session.clear()
    session.permanent = True
    session[CONVERSATION_KEY] = conversation.id
    return conversation


@bp.post("/api/conversation")
def start_conversation():
    """Resume this browser's conversation, or start one with the entry host."""
    conversation = session_conversation()
    if conversation is None:
        refuse_too_many_new_conversations()
        conversation = start_new_conversation()
    else:
        check_read_limits(conversation)
    return jsonify(state_json(conversation, store.list_messages(store.get_db(), conversation.id)))


@bp.post("/api/start-over")
def start_over():
    """End this browser's conversation (and any stay at a desk), forget it, and start a fresh one."""
    refuse_busy_client()
    refuse_too_many_new_conversations()
    ending = session_conversation()
    if ending is not None:
        # First, so that if it cannot be done now, this browser keeps its conversation to try again.
        leave_for_good(ending)
    return jsonify(state_json(start_new_conversation(), []))


def leave_for_good(conversation: store.Conversation) -> None:
    """Close the conversation's open stay at a desk, if any, and tell the desk as the console's close does."""
    connection = store.get_db()
    with turn_lock(conversation.id):
        stay = store.find_open_stay(connection, conversation.id)
        if stay is None:
            return
        with store.transaction(connection):
            store.close_stay(connection, stay.session_id, "started_over")
            store.add_message(connection, conversation.id, "notice", None, {"text": STARTED_OVER})
    events.changed(conversation.id)
    desk = current_config().find_host(stay.host_id)
    if desk is None or desk.kind != "parlant":
        return
    try:
        stays.end_stay(stays.desk_client(desk), stay, "started_over", "the person")
    except parlant_client.ParlantError as exc:
        # The chatroom's table already says it ended; the console shows it at once.
        logger.warning("conversation=%s could not tell %s the stay ended: %s", conversation.id, desk.id, exc)


def read_turn(conversation: store.Conversation) -> Turn:
    """Return what the person said or chose, from the request body."""

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Send a JSON object with 'text' or 'button'.")
    named = body.get("conversation_id", body.get("sender"))
    if named is not None and named != conversation.id:
        # The cookie is the only way to name a conversation.
        raise ApiError(403, "That conversation is not yours.")
    if "button" in body:
        return read_button(conversation, body["button"])
    text = read_text(body)
    if is_command(text):
        raise ApiError(400, "Messages can't start with “/”; please type it without the slash.")
    return Turn(text, text)


def is_command(text: str) -> bool:
    """Tell whether typed text would reach Rasa as an "/intent{...}" command.

    Rasa reads such a message as an intent with entities, so a person could set
    slots or trigger a handoff by typing; commands come only from buttons, through
    ids the server issued.
    """
    return not current_app.config["ALLOW_COMMANDS"] and LEADING_SPACE.sub("", text).startswith("/")


def read_button(conversation: store.Conversation, button_id: Any) -> Turn:
    try:
        message_id, index = (int(part) for part in str(button_id).split(":"))
    except ValueError:
        raise ApiError(400, "That button is not valid.") from None
    button = store.find_button(store.get_db(), conversation.id, message_id, index)
    if button is not None and isinstance(button.get(store.CHOICE), dict):
        return Turn(str(button.get("title", "")), None, button[store.CHOICE])
    if button is None or not isinstance(button.get("payload"), str):
        raise ApiError(400, "That button is no longer active; please type your answer instead.")
    return Turn(str(button.get("title") or button["payload"]), button["payload"])


def check_rate_limits(conversation: store.Conversation) -> None:
    """Refuse with 429 and Retry-After once a conversation or a client sends too fast."""
    refuse_busy_client()
    refuse_over_limit(
        "conversation", conversation.id, current_app.config["RATE_PER_CONVERSATION"], "sending messages"
    )


def check_read_limits(conversation: store.Conversation) -> None:
    """Refuse with 429 once a conversation is read (page loads, streams, polls) too often in the window."""
    refuse_over_limit("reads", conversation.id, current_app.config["READS_PER_CONVERSATION"], "reloading")


@bp.post("/api/messages")
def post_message():
    """Take one turn: deliver the person's message to the current host and return what is new."""
    conversation = require_conversation()
    check_rate_limits(conversation)
    turn = read_turn(conversation)
    connection = store.get_db()
    try:
        with turn_lock(conversation.id):
            # Re-read inside the lock: a turn that just finished may have switched hosts.
            conversation = store.find_conversation(connection, conversation.id)
            before = store.last_message_id(connection, conversation.id)
            conversation = Router(connection, current_config()).take_turn(conversation, turn)
    except (Busy, Unavailable):
        title = host_json(conversation.host_id)["title"]
        raise ApiError(
            503, f"{title} is busy right now; please try again in a moment.", {"Retry-After": "2"}
        ) from None
    events.changed(conversation.id)
    return jsonify(state_json(conversation, store.list_messages(connection, conversation.id, before)))


# A conversation's desk and open stay, as stays.current_stay finds them (None: with a bot).
Found = tuple[Host, store.Stay] | None


def live_state(connection, conversation: store.Conversation, found: Found) -> dict[str, Any]:
    """Return what the page shows around the transcript: the host, and ``found``, the desk stay if any."""
    return {
        "host": host_json(conversation.host_id),
        "live": found is not None,
        "desk": stays.desk_json(connection, *found) if found is not None else None,
        "typing": stays.typing_json(found[1]) if found is not None else None,
    }


def catch_up(connection, conversation: store.Conversation, after: int) -> tuple[list[store.Message], Found]:
    """Give the notice a stay calls for by now; return the transcript after ``after`` and the stay."""
    found = stays.current_stay(connection, current_config(), conversation)
    stays.tell_if_nobody_answers(connection, conversation, found)
    return store.list_messages(connection, conversation.id, after), found


@bp.get("/api/events")
def live_events():
    """Stream the conversation live (Server-Sent Events), from Last-Event-ID or ?after=<message id>."""
    refuse_busy_client()
    conversation = require_conversation()
    check_read_limits(conversation)
    conversation_id = conversation.id
    shown: dict[str, Any] = {}

    def step(cursor: int, _woken: bool) -> tuple[list[str], int]:
        connection = store.get_db()
        conversation = store.find_conversation(connection, conversation_id)
        if conversation is None:
            raise ApiError(409, GONE)
        messages, found = catch_up(connection, conversation, cursor)
        out = [events.sse(message.to_json(), event="message", event_id=message.id) for message in messages]
        state = live_state(connection, conversation, found)
        # The typing countdown changes every time; only a change of who types is news.
        if comparable(state) != comparable(shown):
            out.append(events.sse(state, event="state"))
            shown.clear()
            shown.update(state)
        return out, messages[-1].id if messages else cursor

    topics = [events.conversation_topic(conversation_id), events.PRESENCE_TOPIC]
    return events.stream(topics, events.resume_point(), step)


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    typing = state.get("typing")
    return {**state, "typing": typing and typing["name"]}


@bp.get("/api/updates")
def updates():
    """Return the messages after ?after=<id> and the state around them (for clients without streams).

    With ?wait=<seconds> (at most STREAM_HEARTBEAT), wait that long for something new first.
    """
    refuse_busy_client()
    conversation = require_conversation()
    check_read_limits(conversation)
    after = read_after()
    try:
        wait = min(float(request.args.get("wait", "0")), float(current_app.config["STREAM_HEARTBEAT"]))
    except ValueError:
        raise ApiError(400, "'wait' must be a number of seconds.") from None
    connection = store.get_db()
    messages, found = catch_up(connection, conversation, after)
    if not messages and wait > 0:
        bus = current_app.extensions["shared"].bus
        with bus.subscribe([events.conversation_topic(conversation.id)]) as subscription:
            if not catch_up(connection, conversation, after)[0]:
                # No database connection is held while waiting.
                store.close_db()
                subscription.get(timeout=wait)
        connection = store.get_db()
        conversation = store.find_conversation(connection, conversation.id)
        messages, found = catch_up(connection, conversation, after)
    return jsonify({
        **live_state(connection, conversation, found),
        "messages": [message.to_json() for message in messages],
    })


@bp.post("/api/desk/leave")
def leave():
    """End the person's conversation with a human desk and go back to the assistant they came from."""
    conversation = require_conversation()
    check_rate_limits(conversation)
    connection = store.get_db()
    before = store.last_message_id(connection, conversation.id)
    conversation = Router(connection, current_config()).hand_back(conversation.id, None, "left", "the person")
    events.changed(conversation.id)
    messages = store.list_messages(connection, conversation.id, before)
    return jsonify({**state_json(conversation, messages), "live": False, "desk": None})
