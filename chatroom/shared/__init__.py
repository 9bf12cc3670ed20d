"""State the chatroom's worker processes share: turn locks, rate limits, presence, typing, event fan-out.

``connect(REDIS_URL)`` picks the backend: unset, everything lives in this
process (right for one worker only); set, in Redis, so any number of workers
on any number of machines see one state. Both suit gevent (the chatroom's
workers) and plain threads alike. See ``connect`` for what each part promises.
"""
from __future__ import annotations

from .base import (
    Bus,
    Busy,
    Limits,
    Locks,
    Presence,
    SharedState,
    Subscription,
    Typing,
    Unavailable,
    is_resync,
)

__all__ = [
    "Bus", "Busy", "Limits", "Locks", "Presence", "SharedState", "Subscription", "Typing",
    "Unavailable", "connect", "is_resync",
]


def connect(redis_url: str | None, *, prefix: str = "chatroom") -> SharedState:
    """Return the shared state for ``redis_url`` (REDIS_URL); unset or empty keeps it in this process.

    - ``locks.hold(key, wait=, lease=)``: one holder per key; in process strictly
      first come first served, in Redis first come first served among waiters
      that keep polling (see redis_backend). Raises Busy after ``wait`` seconds.
      In Redis a live holder keeps renewing it; it lapses within ``lease`` seconds of its holder dying.
    - ``limits.hit(scope, key, limit, window)``: sliding window; None or seconds to
      wait. ``limits.reset(scope, key)`` starts it afresh.
    - ``presence.see/forget/states``, ``typing.set/clear/get``: entries that expire.
    - ``bus.publish(topic, message)`` / ``bus.subscribe(topics)``: every open
      subscription of a topic, in any process, gets each message once, in
      publish order; ``{"type": "resync"}`` (see ``is_resync``) says some may
      have been lost, so re-read state from the database.
    - ``healthy()``: whether the store answers now.

    With Redis, each operation raises Unavailable once Redis stays unreachable
    past a short retry; subscriptions never raise and resync when it returns.
    Keys and channels start with ``prefix``, so several chatrooms can share one Redis.
    """
    if not prefix or any(char.isspace() for char in prefix):
        raise ValueError(f"shared state prefix must be a word with no spaces, not {prefix!r}")
    if not redis_url:
        from .memory import memory_state

        return memory_state()
    from .redis_backend import redis_state

    return redis_state(redis_url, prefix)
