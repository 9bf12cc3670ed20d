"""Live events: stored once, fanned out to every open stream, on any worker.

The transcript in the database is the one store of events: a message's id is
its event id, strictly increasing within a conversation, so a stream resumed
with ``Last-Event-ID`` sends what it missed and nothing twice. The shared bus
(shared.py: in-process, or Redis across workers) carries only wake-ups: "this
conversation changed" on ``conversation:<id>`` and on ``console``. A stream
that wakes reads the database; one that may have missed a wake-up (the bus
reconnected) just reads again.

Server-Sent Events (``text/event-stream``): ``message`` events carry a
transcript message and its id; ``state`` events (no id) carry what the page
shows around the transcript; a comment line every ``STREAM_HEARTBEAT``
seconds keeps proxies from closing an idle stream.
"""
from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, current_app, request

from .web import ApiError

logger = logging.getLogger(__name__)

CONSOLE_TOPIC = "console"
# Operators came online or left: every page showing a desk's availability looks again.
PRESENCE_TOPIC = "presence"
# A stay opened at a desk: the stay readers (stays.py) start reading its session.
STAYS_TOPIC = "stays"
# Streams may take this share of a worker's connections; the rest stay free for turns and health checks.
STREAM_SHARE = 0.9
# How long the page waits before reconnecting a dropped stream.
RETRY_MS = 3000


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def changed(conversation_id: str, app: Flask | None = None) -> None:
    """Wake every stream of a conversation, and the consoles, after a change was committed."""
    bus = (app or current_app).extensions["shared"].bus
    for topic in (conversation_topic(conversation_id), CONSOLE_TOPIC):
        try:
            bus.publish(topic, {"type": "changed", "conversation_id": conversation_id})
        except Exception as exc:  # noqa: BLE001 - the change is stored; streams catch up on their heartbeat
            logger.warning("could not announce a change of conversation=%s: %s", conversation_id, exc)


def presence_changed() -> None:
    """Wake every stream that shows whether operators are online."""
    bus = current_app.extensions["shared"].bus
    for topic in (PRESENCE_TOPIC, CONSOLE_TOPIC):
        try:
            bus.publish(topic, {"type": "presence"})
        except Exception as exc:  # noqa: BLE001 - streams catch up on their heartbeat
            logger.warning("could not announce a change of operator presence: %s", exc)


def sse(data: Any, *, event: str | None = None, event_id: int | None = None) -> str:
    """Return one Server-Sent Event: data as JSON on one line."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


def resume_point() -> int:
    """Return the id after which a stream starts: Last-Event-ID on a reconnect, else ?after=."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        raise ApiError(400, "'Last-Event-ID' and 'after' must be message ids.") from None


class StreamCount:
    """How many streams this worker holds, against its share of the connection cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.open >= self.limit:
                raise ApiError(503, "The chatroom is very busy; try again in a moment.", {"Retry-After": "5"})
            self.open += 1

    def leave(self) -> None:
        with self._lock:
            self.open -= 1


def init_app(app: Flask) -> None:
    app.extensions["streams"] = StreamCount(int(app.config["MAX_CONNECTIONS"] * STREAM_SHARE))


Step = Callable[[int, bool], "tuple[list[str], int]"]


def stream(topics: list[str], cursor: int, step: Step) -> Response:
    """Answer with a live stream: ``step(cursor, woken)`` returns the events to send and the new cursor.

    ``step`` runs once at the start, after every wake-up and on every
    heartbeat (woken False), inside an app context of its own so no database
    connection is held while the stream waits.
    """
    app = current_app._get_current_object()
    streams: StreamCount = app.extensions["streams"]
    streams.enter()
    heartbeat = float(app.config["STREAM_HEARTBEAT"])
    try:
        subscription = app.extensions["shared"].bus.subscribe(topics)
    except Exception:
        streams.leave()
        raise

    def generate() -> Iterator[str]:
        nonlocal cursor
        try:
            yield f"retry: {RETRY_MS}\n\n"
            woken = True
            # Streams opened together (a crowd arriving, every page reconnecting after a restart)
            # would otherwise beat together: a thousand steps at once stall the worker's turns.
            wait = heartbeat * random.uniform(0.1, 1.0)
            while True:
                with app.app_context():
                    events, cursor = step(cursor, woken)
                if events:
                    yield "".join(events)
                else:
                    yield ": keep-alive\n\n" if not woken else ""
                woken = subscription.get(timeout=wait) is not None
                wait = heartbeat
        finally:
            subscription.close()
            streams.leave()

    return Response(
        generate(), mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
