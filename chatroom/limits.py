"""Sliding-window rate limits, kept in this process's memory.

Several chatroom processes each keep their own counts; a shared store belongs
in front of them (the load balancer) once there is more than one.
"""
from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque


class RateLimiter:
    """Allow at most ``limit`` hits per key within ``window`` seconds; 0 turns it off."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Record a hit; return None if allowed, else the seconds to wait before retrying."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
