"""The person's side: the page and the JSON API it uses."""
from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, session

from handoff.config import current_config

from . import parlant_client, stays, store
from .gates import Busy
from .routing import Router, turn_lock
from .web import ApiError, host_json, read_after, read_text

logger = logging.getLogger(__name__)
bp = Blueprint("person", __name__)

CONVERSATION_KEY = "conversation_id"
# Any white space (Unicode too) before typed text; Rasa strips it before looking for "/".
LEADING_SPACE = re.compile(r"^[\s\u200b\u2060\ufeff]+")
GONE = "This conversation has ended or expired; reload the page to start again."


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
    """Answer the launcher's readiness check."""
    return jsonify(status="ok")


@bp.post("/api/conversation")
def start_conversation():
    """Resume this browser's conversation, or start one with the entry host."""
    conversation = session_conversation()
    if conversation is None:
        # The id is the only key to a conversation, so it is random and lives in a signed cookie.
        conversation = store.create_conversation(
            store.get_db(), secrets.token_urlsafe(16), current_config().entry
        )
        session.permanent = True
        session[CONVERSATION_KEY] = conversation.id
    return jsonify(state_json(conversation, store.list_messages(store.get_db(), conversation.id)))


def read_turn(conversation: store.Conversation) -> tuple[str, str]:
    """Return (text shown in the transcript, text sent to the host) from the request body."""
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
    return text, text


def is_command(text: str) -> bool:
    """Tell whether typed text would reach Rasa as an "/intent{...}" command.

    Rasa reads such a message as an intent with entities, so a person could set
    slots or trigger a handoff by typing; commands come only from buttons, through
    ids the server issued.
    """
    return not current_app.config["ALLOW_COMMANDS"] and LEADING_SPACE.sub("", text).startswith("/")


def read_button(conversation: store.Conversation, button_id: Any) -> tuple[str, str]:
    try:
        message_id, index = (int(part) for part in str(button_id).split(":"))
    except ValueError:
        raise ApiError(400, "That button is not valid.") from None
    button = store.find_button(store.get_db(), conversation.id, message_id, index)
    if button is None or not isinstance(button.get("payload"), str):
        raise ApiError(400, "That button is no longer active; please type your answer instead.")
    return str(button.get("title") or button["payload"]), button["payload"]


def check_rate_limits(conversation: store.Conversation) -> None:
    """Refuse with 429 and Retry-After once a conversation or a client sends too fast."""
    limits = current_app.extensions["rate_limits"]
    for key, limiter in (
        (conversation.id, limits["conversation"]),
        (request.remote_addr or "unknown", limits["client"]),
    ):
        retry_after = limiter.hit(key)
        if retry_after is not None:
            logger.warning("rate limit conversation=%s client=%s", conversation.id, request.remote_addr)
            raise ApiError(
                429, f"You are sending messages too fast; try again in {retry_after} s.",
                {"Retry-After": str(retry_after)},
            )


@bp.post("/api/messages")
def post_message():
    """Take one turn: deliver the person's message to the current host and return what is new."""
    conversation = require_conversation()
    check_rate_limits(conversation)
    shown, sent = read_turn(conversation)
    connection = store.get_db()
    with turn_lock(conversation.id):
        # Re-read inside the lock: a turn that just finished may have switched hosts.
        conversation = store.find_conversation(connection, conversation.id)
        before = store.last_message_id(connection, conversation.id)
        try:
            conversation = Router(connection, current_config()).take_turn(conversation, shown, sent)
        except Busy:
            host = host_json(conversation.host_id)
            raise ApiError(
                503, f"{host['title']} is busy right now; please try again in a moment.", {"Retry-After": "2"}
            ) from None
    return jsonify(state_json(conversation, store.list_messages(connection, conversation.id, before)))


@bp.get("/api/updates")
def updates():
    """Return the messages after ?after=<id>; at a desk, wait a while for an operator's reply.

    The page keeps one of these running while ``live`` is true. Messages are
    read from the transcript, so a reload or a second tab sees the same ones.
    """
    conversation = require_conversation()
    after = read_after()
    connection = store.get_db()
    stays.tell_if_nobody_is_online(connection, conversation)
    stays.tell_if_nobody_answers(connection, conversation)
    messages = store.list_messages(connection, conversation.id, after)
    found = stays.current_stay(connection, current_config(), conversation)
    if not messages and found is not None:
        host, stay = found
        try:
            stays.relay(connection, stays.desk_client(host), stay, int(current_app.config["DESK_WAIT"]))
        except parlant_client.ParlantError as exc:
            logger.warning("conversation=%s relay from %s failed: %s", conversation.id, host.id, exc)
            raise ApiError(503, f"{host.title} cannot be reached right now; retrying.") from None
        # The wait may have ended because an operator handed the person back.
        conversation = store.find_conversation(connection, conversation.id)
        messages = store.list_messages(connection, conversation.id, after)
        found = stays.current_stay(connection, current_config(), conversation)
    return jsonify({
        **state_json(conversation, messages),
        "live": found is not None,
        "desk": stays.desk_json(connection, *found) if found is not None else None,
        "typing": stays.typing_json(connection, found[1]) if found is not None else None,
    })


@bp.post("/api/desk/leave")
def leave():
    """End the person's conversation with a human desk and go back to the assistant they came from."""
    conversation = require_conversation()
    connection = store.get_db()
    before = store.last_message_id(connection, conversation.id)
    conversation = Router(connection, current_config()).hand_back(conversation.id, None, "left", "the person")
    messages = store.list_messages(connection, conversation.id, before)
    return jsonify({**state_json(conversation, messages), "live": False, "desk": None})
