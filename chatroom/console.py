"""The operator console: the queue of people waiting for a human, their transcripts, replies and hand-backs.

Everything under /desk needs an operator login (pages redirect to it, the API
answers 401); operators.py holds the accounts and how a login is checked, kept
and ended.
"""
from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from handoff.config import HandoffConfig, Host, config_problem, current_config
from handoff.envelope import REQUEST, SLOTS, SUMMARY

from . import events, operators, parlant_client, stats, stays, store, watch
from .routing import HANDED_BACK, Router, turn_lock
from .web import ApiError, host_json, read_after, read_body, read_text

logger = logging.getLogger(__name__)
bp = Blueprint("console", __name__, url_prefix="/desk")

PUBLIC_ENDPOINTS = {"console.login"}
SEND_AS = ("operator", "assistant")
PRESENCE_CHOICES = (stays.ONLINE, stays.AWAY)


def operator() -> str:
    return operators.current()


@bp.before_request
def require_operator():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    name = operators.signed_in()
    if name is not None:
        # Any console request keeps the operator there (online, or away if they chose it).
        stays.see_operator(name)
        return None
    if request.path.startswith("/desk/api/"):
        return jsonify(error="Log in as an operator first."), 401
    return redirect(url_for("console.login", next=request.full_path.rstrip("?")))


def safe_next(target: str | None) -> str:
    """Return where to go after login: only a path under /desk on this site."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/desk") or "\\" in (target or ""):
        return url_for("console.console")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form, or log an operator in."""
    if request.method == "GET":
        return render_template("console_login.html", error=None)
    try:
        token = operators.log_in(request.form.get("name", "").strip(), request.form.get("password", ""))
    except operators.LoginRefused as refused:
        return render_template("console_login.html", error=refused.message), refused.status, refused.headers
    if token is None:
        return render_template("console_login.html", error=operators.WRONG), 401
    return operators.set_cookie(redirect(safe_next(request.args.get("next"))), token)


@bp.post("/logout")
def logout():
    """Log the operator out (offline at once)."""
    operators.log_out()
    stays.forget_operator(operator())
    return operators.forget_cookie(redirect(url_for("console.login")))


@bp.get("")
def console():
    """Serve the console page."""
    return render_template(
        "console.html", operator=operator(), max_chars=current_app.config["MAX_MESSAGE_CHARS"],
        presence=stays.operator_states().get(operator(), stays.OFFLINE),
    )


def operators_json() -> list[dict[str, Any]]:
    """Return every configured operator and whether they are online, away or offline."""
    states = stays.operator_states()
    return [
        {"name": name, "state": states.get(name, stays.OFFLINE)}
        for name in operators.names()
    ]


def stay_json(stay: store.Stay, config: HandoffConfig, connection) -> dict[str, Any]:
    from_host = config.find_host(stay.from_host)
    return {
        "conversation_id": stay.conversation_id,
        "session_id": stay.session_id,
        "desk": host_json(stay.host_id),
        "from_host": {"id": stay.from_host, "title": from_host.title if from_host else stay.from_host},
        "reason": stay.reason,
        "opened_at": stay.opened_at,
        "handoff_message_id": stay.handoff_message_id,
        "status": "waiting" if stay.first_reply_at is None else "answered",
        "first_reply_at": stay.first_reply_at,
        "taken_by": stay.taken_by,
        "closed_at": stay.closed_at,
        "outcome": stay.outcome,
        "last_text": store.last_user_text(connection, stay.conversation_id),
    }


@bp.get("/api/queue")
def queue():
    """List the conversations at a desk, longest waiting first."""
    return jsonify(queue_json(store.get_db(), operator()))


@bp.post("/api/presence")
def set_presence():
    """Set this operator online or away (offline is not being seen for a while, or logging out)."""
    state = read_body().get("state")
    if state not in PRESENCE_CHOICES:
        raise ApiError(400, f"'state' must be one of: {', '.join(PRESENCE_CHOICES)}.")
    stays.see_operator(operator(), state)
    return jsonify(state=state, operators=operators_json())


def find_conversation(conversation_id: str) -> store.Conversation:
    conversation = store.find_conversation(store.get_db(), conversation_id)
    if conversation is None:
        raise ApiError(404, "There is no such conversation.")
    return conversation


def open_stay(conversation: store.Conversation) -> tuple[Host, store.Stay]:
    found = stays.current_stay(store.get_db(), current_config(), conversation)
    if found is None:
        raise ApiError(409, "This conversation is no longer at the desk.")
    return found


def conversation_json(conversation: store.Conversation, after: int) -> dict[str, Any]:
    connection = store.get_db()
    config = current_config()
    history = store.list_conversation_stays(connection, conversation.id)
    live = stays.current_stay(connection, config, conversation)
    return {
        "now": time.time(),
        "conversation_id": conversation.id,
        "host": host_json(conversation.host_id),
        "live": live is not None,
        "stay": stay_json(history[-1], config, connection) if history else None,
        "titles": {host.id: host.title for host in config.hosts},
        "hand_back_to": [
            {"id": host.id, "title": host.title}
            for host in config.hosts if host.kind != "parlant"
        ],
        "messages": [
            message.to_json() for message in store.list_messages(connection, conversation.id, after)
        ],
        "context": context_json(connection, conversation),
        **watch.conversation_extras(connection, config, conversation),
    }


def context_json(connection: store.Connection, conversation: store.Conversation) -> dict[str, Any] | None:
    """Return what the latest handoff told about the person: reason code, summary, slots and request.

    It is the envelope as stored with the switch, so masked unless that host is trusted.
    """
    latest = store.find_latest_switch(connection, conversation.id)
    if latest is None:
        return None
    envelope = latest.envelope or {}
    return {
        "reason": latest.reason_code,
        "summary": envelope.get(SUMMARY),
        "request": envelope.get(REQUEST),
        "slots": envelope.get(SLOTS) or {},
        "from_host": host_json(latest.from_host),
        "to_host": host_json(latest.to_host),
        "at": latest.at,
    }


@bp.get("/api/conversations/<conversation_id>")
def conversation_view(conversation_id: str):
    """Return a conversation's state and its transcript after ?after=<id>."""
    return jsonify(conversation_json(find_conversation(conversation_id), read_after()))


def queue_json(connection, name: str) -> dict[str, Any]:
    """Return the conversations at a desk, longest waiting first, who is on duty, and any config problem."""
    config = current_config()
    problem = config_problem()
    return {
        "now": time.time(),
        "operator": name,
        # A broken edit of handoff_config.yml: the last good config stays in force meanwhile.
        "config_problem": problem.message if problem is not None else None,
        "operators": operators_json(),
        "conversations": [stay_json(stay, config, connection) for stay in store.list_stays(connection)],
        **watch.watch_json(connection, config),
    }


@bp.get("/api/events")
def live_events():
    """Stream the queue, and with ?conversation=<id> that conversation, live (Server-Sent Events).

    An open stream also keeps its operator present (online, or away if they said so).
    """
    name = operator()
    conversation_id = request.args.get("conversation") or None
    topics = [events.CONSOLE_TOPIC]
    if conversation_id is not None:
        find_conversation(conversation_id)
        topics.append(events.conversation_topic(conversation_id))
    shown: dict[str, Any] = {}

    def step(cursor: int, _woken: bool) -> tuple[list[str], int]:
        stays.see_operator(name)
        connection = store.get_db()
        out = []
        queue = queue_json(connection, name)
        if changed(shown, "queue", {**queue, "now": None}):
            out.append(events.sse(queue, event="queue"))
        if conversation_id is not None:
            conversation = store.find_conversation(connection, conversation_id)
            state = conversation_json(conversation, cursor)
            messages = state.pop("messages")
            if changed(shown, "conversation", {**state, "now": None}):
                out.append(events.sse({**state, "messages": []}, event="conversation"))
            for message in messages:
                out.append(events.sse(message, event="message", event_id=message["id"]))
                cursor = message["id"]
        return out, cursor

    return operators.while_signed_in(events.stream(topics, events.resume_point(), step))


def changed(shown: dict[str, Any], key: str, value: Any) -> bool:
    """Remember ``value`` under ``key``; tell whether it differs from what was shown before."""
    if shown.get(key) == value:
        return False
    shown[key] = value
    return True


@bp.post("/api/conversations/<conversation_id>/messages")
def send_message(conversation_id: str):
    """Send the person a message, as the operator (by name) or as the assistant."""
    body = read_body()
    text = read_text(body)
    send_as = body.get("as", "operator")
    if send_as not in SEND_AS:
        raise ApiError(400, f"'as' must be one of: {', '.join(SEND_AS)}.")
    conversation = find_conversation(conversation_id)
    host, stay = open_stay(conversation)
    connection = store.get_db()
    client = stays.desk_client(host)
    try:
        if send_as == "operator":
            client.create_human_agent_event(stay.session_id, text, display_name=operator())
        else:
            client.create_human_agent_on_behalf_of_ai_agent_event(stay.session_id, text)
        store.take_stay(connection, stay.session_id, operator(), force=False)
        # Into the transcript at once, rather than when the stay's reader next hears from the desk.
        stays.relay(connection, client, store.find_stay(connection, stay.session_id))
    except parlant_client.ParlantError as exc:
        logger.warning("conversation=%s send to %s failed: %s", conversation.id, host.id, exc)
        raise ApiError(502, f"{host.title} did not take the message; please send it again.") from None
    events.changed(conversation.id)
    return jsonify(conversation_json(conversation, read_after()))


@bp.post("/api/conversations/<conversation_id>/typing")
def typing(conversation_id: str):
    """Tell the person this operator is typing a reply (or, with "typing": false, stopped)."""
    body = read_body()
    send_as = body.get("as", "operator")
    if send_as not in SEND_AS:
        raise ApiError(400, f"'as' must be one of: {', '.join(SEND_AS)}.")
    typing = body.get("typing", True)
    if not isinstance(typing, bool):
        raise ApiError(400, "'typing' must be true or false.")
    conversation = find_conversation(conversation_id)
    host, stay = open_stay(conversation)
    name = operator() if send_as == "operator" else host.title
    if stays.set_typing(stay, name if typing else None):
        events.changed(conversation.id)
    return jsonify(typing=typing, name=name)


@bp.post("/api/conversations/<conversation_id>/take")
def take(conversation_id: str):
    """Mark the conversation as handled by this operator."""
    read_body()
    conversation = find_conversation(conversation_id)
    _host, stay = open_stay(conversation)
    store.take_stay(store.get_db(), stay.session_id, operator(), force=True)
    events.changed(conversation.id)
    return jsonify(conversation_json(conversation, read_after()))


def end_stay(stay: store.Stay, host: Host, outcome: str) -> None:
    try:
        stays.end_stay(stays.desk_client(host), stay, outcome, operator())
    except parlant_client.ParlantError as exc:
        # The chatroom's table already says it ended; the person's page learns it within one poll.
        logger.warning(
            "conversation=%s could not tell %s the stay ended: %s", stay.conversation_id, host.id, exc
        )


@bp.post("/api/conversations/<conversation_id>/hand-back")
def hand_back(conversation_id: str):
    """Hand the person to a host, exactly as a bot's handoff would (arrival message and all)."""
    host_id = read_body().get("host_id")
    find_conversation(conversation_id)
    if not isinstance(host_id, str) or not host_id:
        raise ApiError(400, "Choose a host from handoff_config.yml other than this desk.")
    conversation = Router(store.get_db(), current_config()).hand_back(
        conversation_id, host_id, HANDED_BACK, operator()
    )
    events.changed(conversation.id)
    return jsonify(conversation_json(conversation, read_after()))


@bp.post("/api/conversations/<conversation_id>/close")
def close(conversation_id: str):
    """End the person's stay at the desk; if they write again, they join the queue again."""
    read_body()
    connection = store.get_db()
    with turn_lock(conversation_id):
        conversation = find_conversation(conversation_id)
        host, stay = open_stay(conversation)
        store.close_stay(connection, stay.session_id, "closed")
        store.add_message(
            connection, conversation.id, "notice", None,
            {"text": stays.CLOSED.format(title=host.title)},
        )
    events.changed(conversation.id)
    end_stay(stay, host, "closed")
    return jsonify(conversation_json(conversation, read_after()))


@bp.post("/api/conversations/<conversation_id>/take-over")
def take_over(conversation_id: str):
    """Step into a conversation a bot has: a desk takes it, this operator answers; the bot hears nothing."""
    desk_id = read_body().get("desk_id")
    if desk_id is not None and not isinstance(desk_id, str):
        raise ApiError(400, "'desk_id' must be the id of a desk in handoff_config.yml.")
    conversation = Router(store.get_db(), current_config()).take_over(conversation_id, desk_id, operator())
    events.changed(conversation.id)
    return jsonify(conversation_json(conversation, read_after()))


@bp.post("/api/conversations/<conversation_id>/notes")
def add_note(conversation_id: str):
    """Leave a note on a conversation for other operators; the person never sees it."""
    text = read_text(read_body())
    conversation = find_conversation(conversation_id)
    watch.add_note(store.get_db(), conversation, operator(), text)
    return jsonify(conversation_json(conversation, read_after()))


def read_period() -> stats.Period:
    try:
        return stats.read_period(request.args, time.time())
    except stats.PeriodError as exc:
        raise ApiError(400, str(exc)) from None


@bp.get("/stats")
def stats_page():
    """Serve the stats page."""
    return render_template("console_stats.html", operator=operator(), figures=list(stats.FIGURES))


@bp.get("/api/stats")
def stats_json():
    """Return every handoff figure as JSON (?days=30&by=hour|day&tz=Europe/Berlin)."""
    return jsonify(stats.compute(store.get_db(), current_config(), read_period()))


@bp.get("/api/stats/<name>.<kind>")
def stats_export(name: str, kind: str):
    """Export one figure as JSON or CSV (same parameters as /api/stats)."""
    if name not in stats.FIGURES or kind not in ("json", "csv"):
        raise ApiError(
            404, f"There is no such export; use one of {', '.join(stats.FIGURES)} as .json or .csv."
        )
    period = read_period()
    rows = stats.figure_rows(stats.compute(store.get_db(), current_config(), period), name)
    if kind == "json":
        return jsonify({**period.to_json(), "figure": name, "rows": rows})
    return current_app.response_class(
        stats.to_csv(name, rows), mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=handoffs-{name}.csv"},
    )
