"""Rate limits of one process, as the app reads them today; chatroom.shared holds the logic.

Once the app takes its limits from ``chatroom.shared`` (``state.limits.hit``),
which several workers can share through Redis, this module goes.
"""
from __future__ import annotations

from .shared.memory import MemoryLimits


class RateLimiter:
    """Allow at most ``limit`` hits per key within ``window`` seconds; 0 turns it off."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._limits = MemoryLimits()

    def hit(self, key: str) -> int | None:
        """Record a hit; return None if allowed, else the seconds to wait before retrying."""
        return self._limits.hit("", key, self.limit, self.window)
