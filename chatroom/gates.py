"""Admission to hosts: a few turns in flight per host, the rest waiting their turn in arrival order.

A bot is one process with a CPU or two: sent everything at once it serves
everyone slowly and turns time out at random. A gate keeps at most
``HOST_CONCURRENCY`` turns in flight per host and queues the others first come,
first served; one that has waited ``QUEUE_WAIT`` seconds gives up with
``shared.Busy`` before anything of the turn was done, so the person can simply try
again. Gates are per worker process (several workers each have their own).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from .shared import Busy


class Gate:
    """A counting semaphore that serves waiters strictly in arrival order."""

    def __init__(self, name: str, places: int) -> None:
        self.name = name
        self.places = places
        self._in_flight = 0
        self._waiting: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextmanager
    def place(self, wait: float) -> Iterator[None]:
        """Hold one place for the duration of the block; raise Busy after ``wait`` seconds in line."""
        self._enter(wait)
        try:
            yield
        finally:
            self._leave()

    def _enter(self, wait: float) -> None:
        with self._lock:
            if self._in_flight < self.places and not self._waiting:
                self._in_flight += 1
                return
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(wait):
            return
        with self._lock:
            if turn.is_set():
                # Handed a place just as the wait ran out: take it.
                return
            self._waiting.remove(turn)
        raise Busy(self.name, wait)

    def _leave(self) -> None:
        with self._lock:
            if self._waiting:
                # The place passes straight to the longest waiter; in_flight stays the same.
                self._waiting.popleft().set()
            else:
                self._in_flight -= 1


class Gates:
    """One gate per host id, made on first use."""

    def __init__(self, places: int) -> None:
        self.places = places
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()

    def for_host(self, host_id: str) -> Gate:
        with self._lock:
            gate = self._gates.get(host_id)
            if gate is None:
                gate = self._gates[host_id] = Gate(host_id, self.places)
            return gate
