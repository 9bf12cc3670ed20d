"""What both backends share: the errors, the resync message and a subscription's mailbox."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

# Delivered to a subscription when messages for it may have been lost (the shared
# connection dropped, or its reader fell too far behind): re-read state from the database.
RESYNC_TYPE = "resync"
# A subscription keeps at most this many unread messages; past it they are dropped for one resync.
MAILBOX_LIMIT = 1000
PRESENCE_STATES = ("online", "away")


class Busy(Exception):
    """The lock on ``key`` stayed with someone else for the whole ``wait``."""

    def __init__(self, key: str, wait: float) -> None:
        super().__init__(f"lock {key!r} is held by another turn; gave up after {wait:g} s")
        self.key = key
        self.wait = wait


class Unavailable(Exception):
    """The shared store (Redis) could not be reached; the message says where and what to check."""


def is_resync(message: dict[str, Any]) -> bool:
    """Return True for the message that says a subscription may have missed some."""
    return message.get("type") == RESYNC_TYPE


def encode_message(topic: str, message: dict[str, Any]) -> bytes:
    """Return ``message`` as JSON, refusing what a reader elsewhere could not read back."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"bus topic must be a non-empty string, not {topic!r}")
    if not isinstance(message, dict):
        raise TypeError(f"bus message must be a dict, not {type(message).__name__}")
    if is_resync(message):
        raise ValueError(f"bus message type {RESYNC_TYPE!r} is reserved for the bus itself; use another type")
    return json.dumps(message, separators=(",", ":")).encode()


def check_presence_state(state: str | None) -> None:
    if state is not None and state not in PRESENCE_STATES:
        choices = ", ".join(PRESENCE_STATES)
        raise ValueError(f"presence state must be one of {choices} (or None), not {state!r}")


def check_hold(wait: float, lease: float) -> None:
    if wait < 0:
        raise ValueError(f"lock wait must be 0 or more seconds, not {wait!r}")
    if lease <= 0:
        raise ValueError(f"lock lease must be more than 0 seconds, not {lease!r}")


def unique(topics: Iterable[str]) -> tuple[str, ...]:
    """Return the topics once each, in the order given; refuse a bare string (a common slip)."""
    if isinstance(topics, str):
        raise TypeError(f"subscribe takes a list of topics, not the string {topics!r}")
    ordered = tuple(dict.fromkeys(topics))
    for topic in ordered:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"bus topic must be a non-empty string, not {topic!r}")
    return ordered


class Subscription:
    """The messages of some topics, in publish order per topic: read with get(), end with close().

    A message is one dict shared by every subscription in the process: treat it as read-only.
    """

    def __init__(self, topics: tuple[str, ...], on_close: Callable[[Subscription], None]) -> None:
        self.topics = topics
        self._on_close = on_close
        self._items: deque[dict[str, Any] | None] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._resync_queued = False
        self._closed = False

    def get(self, timeout: float) -> dict[str, Any] | None:
        """Return the next message, waiting up to ``timeout`` seconds; None if none came (or closed)."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._items:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._ready.wait(remaining)
            item = self._items.popleft()
            if item is None:
                self._resync_queued = False
                return {"type": RESYNC_TYPE}
            return item

    def deliver(self, message: dict[str, Any]) -> None:
        """Queue a message; a reader too far behind gets one resync in place of what it missed."""
        with self._ready:
            if self._closed:
                return
            if len(self._items) >= MAILBOX_LIMIT:
                self._items.clear()
                self._resync_queued = False
                self._queue_resync()
            else:
                self._items.append(message)
            self._ready.notify()

    def resync(self) -> None:
        """Tell the reader messages may have been lost (once, however often it is called before it reads)."""
        with self._ready:
            if not self._closed:
                self._queue_resync()
                self._ready.notify()

    def _queue_resync(self) -> None:
        # One queued resync covers any loss before the reader reaches it: it re-reads state then.
        if not self._resync_queued:
            self._resync_queued = True
            self._items.append(None)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop receiving; a get() waiting now returns None. Closing twice is harmless."""
        with self._ready:
            if self._closed:
                return
            self._closed = True
            self._items.clear()
            self._ready.notify_all()
        self._on_close(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Locks(Protocol):
    def hold(self, key: str, *, wait: float, lease: float) -> AbstractContextManager[None]:
        """Hold ``key`` for the ``with`` block, one holder at a time; raise Busy after ``wait`` s."""

    def waiting(self, key: str) -> int:
        """Return how many are queued for ``key`` (not counting its holder)."""


class Limits(Protocol):
    def hit(self, scope: str, key: str, limit: int, window: float) -> int | None:
        """Count a hit; None if allowed, else whole seconds (>= 1) to wait. ``limit`` 0 is no limit."""

    def reset(self, scope: str, key: str) -> None:
        """Forget the hits of (scope, key): the next one starts a fresh window."""


class Presence(Protocol):
    def see(self, name: str, state: str | None, ttl: float) -> str:
        """Record ``name`` as seen for ``ttl`` s in ``state`` (None keeps the current one); return it."""

    def forget(self, name: str) -> None:
        """Drop ``name`` at once (logged out)."""

    def states(self) -> dict[str, str]:
        """Return {name: "online" | "away"} for everyone seen within their ttl."""


class Typing(Protocol):
    def set(self, stay_id: str, name: str, until: float) -> None:
        """Record that ``name`` types in ``stay_id`` until ``until`` (epoch seconds)."""

    def clear(self, stay_id: str) -> None:
        """Forget who types in ``stay_id``."""

    def get(self, stay_id: str) -> tuple[str, float] | None:
        """Return (name, until) while it has not passed, else None."""


class Bus(Protocol):
    def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Send ``message`` to every subscription of ``topic`` open now, in any process."""

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        """Return a subscription that gets every message published to ``topics`` from now on."""


class SharedState:
    """State the chatroom's worker processes share; one per process, made by ``connect()``."""

    def __init__(
        self,
        *,
        backend: str,
        locks: Locks,
        limits: Limits,
        presence: Presence,
        typing: Typing,
        bus: Bus,
        healthy: Callable[[], bool],
        close: Callable[[], None],
    ) -> None:
        self.backend = backend
        self.locks = locks
        self.limits = limits
        self.presence = presence
        self.typing = typing
        self.bus = bus
        self._healthy = healthy
        self._close = close

    def healthy(self) -> bool:
        """Return True if the shared store answers now (always True in process)."""
        return self._healthy()

    def close(self) -> None:
        """Close connections and stop the background reader; for tests and shutdown."""
        self._close()

    def __repr__(self) -> str:
        return f"<SharedState {self.backend}>"
