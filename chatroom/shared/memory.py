"""In-process shared state: right for one chatroom worker process, wrong for several.

Plain threading primitives only, so gevent's monkey-patching turns every wait
into a greenlet wait; nothing here starts a thread.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .base import (
    Busy,
    SharedState,
    Subscription,
    check_hold,
    check_presence_state,
    encode_message,
    unique,
)

# Past this many keys, a hit also forgets the keys whose window has passed.
TIDY_AFTER = 10_000


class MemoryLocks:
    """Fair locks: waiters are served strictly in arrival order, the lock handed straight to the next.

    The lease is not needed here: a holder that dies takes the whole process, and every waiter, with it.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        # A key is held while it has an entry; the deque holds its waiters, first come first.
        self._queues: dict[str, deque[threading.Event]] = {}

    @contextmanager
    def hold(self, key: str, *, wait: float, lease: float) -> Iterator[None]:
        check_hold(wait, lease)
        self._acquire(key, wait)
        try:
            yield
        finally:
            self._release(key)

    def waiting(self, key: str) -> int:
        with self._guard:
            return len(self._queues.get(key, ()))

    def _acquire(self, key: str, wait: float) -> None:
        with self._guard:
            queue = self._queues.get(key)
            if queue is None:
                self._queues[key] = deque()
                return
            ticket = threading.Event()
            queue.append(ticket)
        if ticket.wait(wait):
            return
        with self._guard:
            # The holder may have handed the lock over just as the wait ran out.
            if ticket.is_set():
                return
            queue.remove(ticket)
        raise Busy(key, wait)

    def _release(self, key: str) -> None:
        with self._guard:
            queue = self._queues[key]
            if queue:
                queue.popleft().set()
            else:
                del self._queues[key]


class _Window:
    __slots__ = ("window", "hits")

    def __init__(self, window: float) -> None:
        self.window = window
        self.hits: deque[float] = deque()

    def forget_before(self, now: float) -> None:
        while self.hits and self.hits[0] <= now - self.window:
            self.hits.popleft()


class MemoryLimits:
    """Sliding-window rate limits: at most ``limit`` hits per (scope, key) in any ``window`` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def hit(self, scope: str, key: str, limit: int, window: float) -> int | None:
        if limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            entry = self._windows.get((scope, key))
            if entry is None:
                entry = self._windows[(scope, key)] = _Window(window)
            entry.window = window
            entry.forget_before(now)
            if len(entry.hits) >= limit:
                return max(1, math.ceil(entry.hits[0] + window - now))
            entry.hits.append(now)
            if len(self._windows) > TIDY_AFTER:
                self._forget_idle(now)
            return None

    def reset(self, scope: str, key: str) -> None:
        with self._lock:
            self._windows.pop((scope, key), None)

    def _forget_idle(self, now: float) -> None:
        for scoped_key, entry in list(self._windows.items()):
            entry.forget_before(now)
            if not entry.hits:
                del self._windows[scoped_key]


class MemoryPresence:
    """Who has been seen, until when, and in which state; forgotten once their ttl passes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, str]] = {}

    def see(self, name: str, state: str | None, ttl: float) -> str:
        check_presence_state(state)
        now = time.monotonic()
        with self._lock:
            if state is None:
                until, current = self._seen.get(name, (0.0, "online"))
                state = current if until > now else "online"
            self._seen[name] = (now + ttl, state)
        return state

    def forget(self, name: str) -> None:
        with self._lock:
            self._seen.pop(name, None)

    def states(self) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            for name in [name for name, (until, _) in self._seen.items() if until <= now]:
                del self._seen[name]
            return {name: state for name, (_, state) in self._seen.items()}


class MemoryTyping:
    """Who is typing in each stay, until when (epoch seconds); nothing is ever written down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._typing: dict[str, tuple[str, float]] = {}

    def set(self, stay_id: str, name: str, until: float) -> None:
        now = time.time()
        with self._lock:
            self._typing[stay_id] = (name, until)
            if len(self._typing) > TIDY_AFTER:
                for stale in [key for key, (_, at) in self._typing.items() if at <= now]:
                    del self._typing[stale]

    def clear(self, stay_id: str) -> None:
        with self._lock:
            self._typing.pop(stay_id, None)

    def get(self, stay_id: str) -> tuple[str, float] | None:
        with self._lock:
            found = self._typing.get(stay_id)
            if found is not None and found[1] <= time.time():
                del self._typing[stay_id]
                return None
            return found


class MemoryBus:
    """Fan-out to this process's subscriptions; one lock keeps every topic's order the same for all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, set[Subscription]] = {}

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        # Through JSON, so a message that works here works with Redis too.
        decoded = json.loads(encode_message(topic, message))
        with self._lock:
            for subscription in self._topics.get(topic, ()):
                subscription.deliver(decoded)

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        subscription = Subscription(unique(topics), self._unsubscribe)
        with self._lock:
            for topic in subscription.topics:
                self._topics.setdefault(topic, set()).add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            for topic in subscription.topics:
                subscribers = self._topics.get(topic)
                if subscribers is not None:
                    subscribers.discard(subscription)
                    if not subscribers:
                        del self._topics[topic]


def memory_state() -> SharedState:
    """Return shared state kept in this process: valid for one worker process only."""
    return SharedState(
        backend="memory",
        locks=MemoryLocks(),
        limits=MemoryLimits(),
        presence=MemoryPresence(),
        typing=MemoryTyping(),
        bus=MemoryBus(),
        healthy=lambda: True,
        close=lambda: None,
    )
