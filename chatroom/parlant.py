"""Every call the chatroom makes to a Parlant desk, in Parlant's words.

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
import time
from datetime import datetime
from typing import Any

import requests

from handoff.config import HandoffConfig, Host

from . import db

logger = logging.getLogger(__name__)

TOKEN_ENV = "DESK_API_TOKEN"
HUMAN_AGENT = "human_agent"
HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT = "human_agent_on_behalf_of_ai_agent"
OPERATOR_SOURCES = (HUMAN_AGENT, HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT)
MANUAL = "manual"
TYPING = "typing"
READY = "ready"
# A "typing" status shows for this long unless another one follows (the console sends one every 2 s).
TYPING_SECONDS = 5.0
# Seconds on top of a long-poll's wait before the HTTP call itself gives up.
WAIT_MARGIN = 5.0
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


class ParlantError(Exception):
    """A Parlant desk did not answer usably: down, slow, refused or an unexpected reply."""


class Parlant:
    """A client for one Parlant server's REST API, with the desk token and timeouts."""

    def __init__(self, url: str, token: str, http: requests.Session, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.http = http
        self.timeout = timeout

    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict | None = None,
        timeout: float | None = None, ok: tuple[int, ...] = (200, 201),
    ) -> requests.Response:
        url = f"{self.url}{path}"
        try:
            response = self.http.request(
                method, url, json=json, params=params, timeout=timeout or self.timeout,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except requests.RequestException as exc:
            raise ParlantError(f"{method} {url}: {type(exc).__name__}") from None
        if response.status_code not in ok:
            # Refusals are not quoted: a stock Parlant echoes the request headers, token included.
            detail = "" if response.status_code in (401, 403) else f" {response.text[:200]}"
            raise ParlantError(f"{method} {url}: HTTP {response.status_code}{detail}")
        return response

    def _json(self, *args: Any, **kwargs: Any) -> Any:
        response = self._call(*args, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ParlantError(f"{args[0]} {self.url}{args[1]}: reply is not JSON") from None

    def list_agents(self) -> list[dict[str, Any]]:
        return self._json("GET", "/agents")

    def create_session(
        self, *, agent_id: str, title: str, metadata: dict[str, Any], labels: list[str] | None = None
    ) -> dict[str, Any]:
        """Create a guest session (Parlant never greets unless asked to)."""
        body = {"agent_id": agent_id, "title": title, "metadata": metadata, "labels": labels or []}
        return self._json("POST", "/sessions", json=body)

    def read_session(self, session_id: str) -> dict[str, Any]:
        return self._json("GET", f"/sessions/{session_id}")

    def update_session(
        self, session_id: str, *, mode: str | None = None, metadata: dict[str, Any] | None = None,
        labels: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if mode is not None:
            body["mode"] = mode
        if metadata is not None:
            body["metadata"] = {"set": metadata, "unset": []}
        if labels is not None:
            body["labels"] = {"upsert": labels, "remove": []}
        return self._json("PATCH", f"/sessions/{session_id}", json=body)

    def create_customer_event(self, session_id: str, message: str) -> dict[str, Any]:
        body = {"kind": "message", "source": "customer", "message": message}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_human_agent_event(self, session_id: str, message: str, display_name: str) -> dict[str, Any]:
        body = {
            "kind": "message", "source": HUMAN_AGENT, "message": message,
            "participant": {"display_name": display_name},
        }
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_human_agent_on_behalf_of_ai_agent_event(self, session_id: str, message: str) -> dict[str, Any]:
        body = {"kind": "message", "source": HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT, "message": message}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_custom_event(self, session_id: str, data: dict[str, Any]) -> dict[str, Any]:
        body = {"kind": "custom", "source": "system", "data": data}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_status_event(
        self, session_id: str, status: str, source: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Post a status event ("typing", "ready") from an operator's source; Parlant never acts on it."""
        body = {"kind": "status", "source": source, "status": status, "data": data}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def list_events(
        self, session_id: str, *, min_offset: int, wait_for_data: int = 0
    ) -> list[dict[str, Any]]:
        """Return the session's events from ``min_offset`` on, waiting up to ``wait_for_data`` s for one."""
        response = self._call(
            "GET", f"/sessions/{session_id}/events",
            params={"min_offset": min_offset, "wait_for_data": wait_for_data},
            timeout=max(self.timeout, wait_for_data + WAIT_MARGIN),
            ok=(200, 504),
        )
        if response.status_code == 504:
            # Parlant's long poll answers 504 when nothing arrived in time.
            return []
        try:
            events = response.json()
        except ValueError:
            raise ParlantError(f"GET {response.url}: reply is not JSON") from None
        if not isinstance(events, list):
            raise ParlantError(f"GET {response.url}: reply is not a list of events")
        return events


def client_for(host: Host, token: str, http: requests.Session, timeout: float) -> Parlant:
    return Parlant(host.url, token, http, timeout)


def transcript_json(messages: list[db.Message], config: HandoffConfig) -> list[dict[str, Any]]:
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
    connection: sqlite3.Connection, client: Parlant, config: HandoffConfig, desk: Host,
    conversation: db.Conversation, from_host: Host | None, reason: str | None,
) -> db.DeskSession:
    """Open a manual-mode Parlant session for a conversation arriving at ``desk``.

    Its title and metadata name the conversation, the host handed from and the
    reason; its metadata holds the whole transcript so far.
    """
    agents = client.list_agents()
    if not agents:
        raise ParlantError(f"{client.url} has no agent to stand for the team")
    from_title = from_host.title if from_host else "the chatroom"
    metadata = {
        "conversation_id": conversation.id,
        "from_host": from_host.id if from_host else None,
        "from_host_url": from_host.url if from_host else None,
        "from_title": from_title,
        "reason": reason,
        "transcript": transcript_json(db.list_messages(connection, conversation.id), config),
    }
    title = f"{from_title}: {reason}" if reason else f"From {from_title}"
    session = client.create_session(
        agent_id=agents[0]["id"], title=title[:200], metadata=metadata, labels=["handoff"]
    )
    if session.get("mode") != MANUAL:
        # The desk makes every session manual; a stock Parlant server needs telling.
        session = client.update_session(session["id"], mode=MANUAL)
    if session.get("mode") != MANUAL:
        raise ParlantError(f"{client.url}: session {session.get('id')} is not in manual mode")
    return db.open_desk_session(
        connection, session["id"], conversation.id, desk.id,
        from_host.id if from_host else "", reason,
    )


def current_stay(
    connection: sqlite3.Connection, config: HandoffConfig, conversation: db.Conversation
) -> tuple[Host, db.DeskSession] | None:
    """Return the desk a conversation is at and its open stay, or None if it is with a bot."""
    host = config.find_host(conversation.host_id)
    if host is None or host.kind != "parlant":
        return None
    stay = db.find_open_desk_session(connection, conversation.id)
    if stay is None or stay.host_id != host.id:
        return None
    return host, stay


def operator_message(event: dict[str, Any]) -> dict[str, Any] | None:
    """Return the transcript body for an operator's message event, or None for any other event."""
    if event.get("kind") != "message" or event.get("source") not in OPERATOR_SOURCES or event.get("deleted"):
        return None
    data = event.get("data") or {}
    text = data.get("message")
    if not isinstance(text, str) or not text:
        return None
    body: dict[str, Any] = {"text": text}
    if event["source"] == HUMAN_AGENT:
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
    if event.get("kind") != "status" or event.get("source") not in OPERATOR_SOURCES:
        return None
    data = event.get("data") or {}
    extra = data.get("data")
    name = extra.get("name") if isinstance(extra, dict) else None
    if data.get("status") != TYPING or not isinstance(name, str) or not name:
        return None, 0.0
    return name[:80], created_at(event, now) + TYPING_SECONDS


def relay(connection: sqlite3.Connection, client: Parlant, stay: db.DeskSession, wait: int = 0) -> int:
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
    return db.store_desk_events(connection, stay, messages, next_offset, typing)


def send_typing(client: Parlant, stay: db.DeskSession, name: str, as_assistant: bool, typing: bool) -> None:
    """Tell the session an operator is typing (or stopped), as themselves or as the assistant."""
    source = HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT if as_assistant else HUMAN_AGENT
    client.create_status_event(stay.session_id, TYPING if typing else READY, source, {"name": name})


def end_stay(client: Parlant, stay: db.DeskSession, outcome: str, operator: str) -> None:
    """Tell Parlant a stay ended (this also wakes every long poll on the session)."""
    client.update_session(stay.session_id, metadata={"outcome": outcome, "ended_by": operator})
    client.create_custom_event(stay.session_id, {"event": STAY_ENDED, "outcome": outcome, "by": operator})
