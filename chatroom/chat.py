"""The person's side: the page and the JSON API it uses."""
from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import requests
from flask import Blueprint, current_app, jsonify, render_template, request, session
from werkzeug.exceptions import HTTPException

from handoff.config import Host, current_config

from . import db
from .hosts import adapter_for
from .routing import Router, turn_lock

logger = logging.getLogger(__name__)
bp = Blueprint("chat", __name__)

CONVERSATION_KEY = "conversation_id"
# Any white space (Unicode too) before typed text; Rasa strips it before looking for "/".
LEADING_SPACE = re.compile(r"^[\s\u200b\u2060\ufeff]+")


class ApiError(Exception):
    """A request the API refuses, with the status and a sentence for the page."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@bp.errorhandler(ApiError)
def handle_api_error(exc: ApiError):
    return jsonify(error=exc.message), exc.status, exc.headers


@bp.app_errorhandler(HTTPException)
def handle_http_error(exc: HTTPException):
    # JSON for the API, plain pages elsewhere; never a stack trace.
    if request.path.startswith("/api/"):
        return jsonify(error=exc.description), exc.code
    return exc


def http_session() -> requests.Session:
    """Return the app's pooled HTTP client for talking to hosts."""
    client = current_app.extensions.get("host_http")
    if client is None:
        client = current_app.extensions["host_http"] = requests.Session()
    return client


def deliver(host: Host, sender: str, text: str, timeout: float) -> list[dict[str, Any]]:
    """Send one message to a host through its adapter."""
    return adapter_for(host, timeout, http_session()).send(sender, text)


def host_json(host_id: str) -> dict[str, str]:
    host = current_config().find_host(host_id)
    return {"id": host_id, "title": host.title if host else host_id}


def state_json(conversation: db.Conversation, messages: list[db.Message]) -> dict[str, Any]:
    return {
        "host": host_json(conversation.host_id),
        "messages": [message.to_json() for message in messages],
    }


def session_conversation() -> db.Conversation | None:
    return db.find_conversation(db.get_db(), session.get(CONVERSATION_KEY))


@bp.get("/")
def index():
    """Serve the chat page."""
    return render_template("index.html", max_chars=current_app.config["MAX_MESSAGE_CHARS"])


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
        conversation = db.create_conversation(
            db.get_db(), secrets.token_urlsafe(16), current_config().entry
        )
        session.permanent = True
        session[CONVERSATION_KEY] = conversation.id
    return jsonify(state_json(conversation, db.list_messages(db.get_db(), conversation.id)))


def read_turn(conversation: db.Conversation) -> tuple[str, str]:
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
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "Type a message first.")
    text = text.strip()
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if len(text) > limit:
        raise ApiError(400, f"That message is too long ({len(text)} characters; the limit is {limit}).")
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


def read_button(conversation: db.Conversation, button_id: Any) -> tuple[str, str]:
    try:
        message_id, index = (int(part) for part in str(button_id).split(":"))
    except ValueError:
        raise ApiError(400, "That button is not valid.") from None
    button = db.find_button(db.get_db(), conversation.id, message_id, index)
    if button is None or not isinstance(button.get("payload"), str):
        raise ApiError(400, "That button is no longer active; please type your answer instead.")
    return str(button.get("title") or button["payload"]), button["payload"]


def check_rate_limits(conversation: db.Conversation) -> None:
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
    conversation = session_conversation()
    if conversation is None:
        raise ApiError(409, "This conversation has ended or expired; reload the page to start again.")
    check_rate_limits(conversation)
    shown, sent = read_turn(conversation)
    connection = db.get_db()
    with turn_lock(conversation.id):
        # Re-read inside the lock: a turn that just finished may have switched hosts.
        conversation = db.find_conversation(connection, conversation.id)
        before = db.last_message_id(connection, conversation.id)
        router = Router(connection, current_config(), deliver, float(current_app.config["TURN_TIMEOUT"]))
        conversation = router.take_turn(conversation, shown, sent)
    return jsonify(state_json(conversation, db.list_messages(connection, conversation.id, before)))
