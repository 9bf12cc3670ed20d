"""The person's side: the page and the JSON API it uses."""
from __future__ import annotations

import logging
import re
import secrets
import statistics
import time
from typing import Any

import requests
from flask import Blueprint, current_app, jsonify, render_template, request, session
from werkzeug.exceptions import HTTPException

from handoff.config import Host, current_config
from handoff.payload import HANDOFF_TO, REASON

from . import db, parlant
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


def deliver(
    host: Host, sender: str, text: str, timeout: float, handoff: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Send one message to a host through its adapter."""
    adapter = adapter_for(
        host, timeout, http_session(), db.get_db(), current_app.config["DESK_API_TOKEN"]
    )
    return adapter.send(sender, text, handoff=handoff)


def desk_client(host: Host) -> parlant.Parlant:
    """Return a client for a desk's Parlant API, with the app's token and timeout."""
    timeout = float(current_app.config["TURN_TIMEOUT"])
    return parlant.client_for(host, current_app.config["DESK_API_TOKEN"], http_session(), timeout)


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


def read_text(body: dict[str, Any]) -> str:
    """Return the stripped 'text' of a request body, refusing empty or overlong text (400)."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "Type a message first.")
    text = text.strip()
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if len(text) > limit:
        raise ApiError(400, f"That message is too long ({len(text)} characters; the limit is {limit}).")
    return text


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


@bp.get("/api/updates")
def updates():
    """Return the messages after ?after=<id>; at a desk, wait a while for an operator's reply.

    The page keeps one of these running while ``live`` is true. Messages are
    read from the transcript, so a reload or a second tab sees the same ones.
    """
    conversation = session_conversation()
    if conversation is None:
        raise ApiError(409, "This conversation has ended or expired; reload the page to start again.")
    try:
        after = int(request.args.get("after", "0"))
    except ValueError:
        raise ApiError(400, "'after' must be a message id.") from None
    connection = db.get_db()
    tell_if_nobody_is_online(connection, conversation)
    tell_if_nobody_answers(connection, conversation)
    messages = db.list_messages(connection, conversation.id, after)
    stay = parlant.current_stay(connection, current_config(), conversation)
    if not messages and stay is not None:
        host, desk_stay = stay
        try:
            parlant.relay(connection, desk_client(host), desk_stay, int(current_app.config["DESK_WAIT"]))
        except parlant.ParlantError as exc:
            logger.warning("conversation=%s relay from %s failed: %s", conversation.id, host.id, exc)
            raise ApiError(503, f"{host.title} cannot be reached right now; retrying.") from None
        # The wait may have ended because an operator handed the person back.
        conversation = db.find_conversation(connection, conversation.id)
        messages = db.list_messages(connection, conversation.id, after)
        stay = parlant.current_stay(connection, current_config(), conversation)
    return jsonify({
        **state_json(conversation, messages),
        "live": stay is not None,
        "desk": desk_json(connection, *stay) if stay is not None else None,
        "typing": typing_json(connection, stay[1]) if stay is not None else None,
    })


def typing_json(connection, stay: db.DeskSession) -> dict[str, Any] | None:
    """Return who is typing a reply and until when (epoch s; seconds_left for the page's timer)."""
    now = time.time()
    typing = db.find_desk_typing(connection, stay.session_id, now)
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


def desk_json(connection, host: Host, stay: db.DeskSession) -> dict[str, Any]:
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
        position = db.queue_position(connection, stay)
        waits = db.recent_reply_waits(connection, host.id, time.time() - ESTIMATE_WINDOW)
        info["position"] = position
        info["estimated_wait_seconds"] = statistics.median(waits) * position if waits else None
    return info


def tell_if_nobody_is_online(connection, conversation: db.Conversation) -> None:
    """On arrival at a desk (the page's first poll), tell the person at once if no operator is online."""
    found = parlant.current_stay(connection, current_config(), conversation)
    if found is None:
        return
    host, stay = found
    if stay.first_reply_at is not None or not db.mark_desk_notice(connection, stay.session_id, "arrival"):
        return
    if operators_online() == 0:
        back_to = current_config().find_host(stay.from_host) or current_config().entry_host
        db.add_message(connection, conversation.id, "notice", None, {
            "text": parlant.NOBODY_ONLINE.format(title=host.title, back_to=back_to.title),
        })


def tell_if_nobody_answers(connection, conversation: db.Conversation) -> None:
    """Once per stay, tell a person nobody has answered in time, and what they can do."""
    found = parlant.current_stay(connection, current_config(), conversation)
    if found is None:
        return
    host, stay = found
    limit = float(current_app.config["DESK_NO_ANSWER_AFTER"])
    if stay.first_reply_at is not None or time.time() - stay.opened_at < limit:
        return
    if db.mark_no_answer_told(connection, stay.session_id):
        back_to = current_config().find_host(stay.from_host) or current_config().entry_host
        db.add_message(connection, conversation.id, "notice", None, {
            "text": parlant.NO_ANSWER.format(title=host.title, back_to=back_to.title),
        })


def leave_desk(conversation_id: str, target_id: str | None, outcome: str, by: str) -> db.Conversation:
    """Hand a person at a desk to a host through the usual handoff (arrival message and all).

    With no target, they go back to the host they came from. Used by the
    console's hand-back and by the person ending the conversation.
    """
    config = current_config()
    connection = db.get_db()
    with turn_lock(conversation_id):
        conversation = db.find_conversation(connection, conversation_id)
        found = parlant.current_stay(connection, config, conversation) if conversation else None
        if found is None:
            raise ApiError(409, "This conversation is no longer at the desk.")
        host, stay = found
        if target_id:
            target = config.find_host(target_id)
        else:
            target = config.find_host(stay.from_host) or config.entry_host
        if target is None or target.id == host.id:
            raise ApiError(400, "Choose a host from handoff_config.yml other than this desk.")
        router = Router(connection, config, deliver, float(current_app.config["TURN_TIMEOUT"]))
        request = {HANDOFF_TO: target.id, REASON: f"{outcome} by {by}"}
        conversation = router.hand_off(conversation, host, request)
        if conversation.host_id != target.id:
            raise ApiError(502, f"{target.title} did not answer, so the person is still at {host.title}.")
        db.close_desk_session(connection, stay.session_id, f"{outcome}:{target.id}")
    logger.info("conversation=%s %s %s -> %s by %s", conversation_id, outcome, host.id, target.id, by)
    try:
        parlant.end_stay(desk_client(host), stay, f"{outcome}:{target.id}", by)
    except parlant.ParlantError as exc:
        # The routing table already says it ended; anyone polling learns it within one wait.
        logger.warning("conversation=%s could not tell %s the stay ended: %s", conversation_id, host.id, exc)
    return conversation


@bp.post("/api/desk/leave")
def leave():
    """End the person's conversation with a human desk and go back to the assistant they came from."""
    conversation = session_conversation()
    if conversation is None:
        raise ApiError(409, "This conversation has ended or expired; reload the page to start again.")
    before = db.last_message_id(db.get_db(), conversation.id)
    conversation = leave_desk(conversation.id, None, "left", "the person")
    messages = db.list_messages(db.get_db(), conversation.id, before)
    return jsonify({**state_json(conversation, messages), "live": False, "desk": None})
