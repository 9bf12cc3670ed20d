"""Admission to hosts: a few turns in flight, the rest served in arrival order, Busy past the wait."""
from __future__ import annotations

import threading
import time

import pytest

from chatroom.gates import Gate
from chatroom.shared import Busy


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_waiters_get_places_in_arrival_order():
    gate = Gate("bot", 1)
    order: list[int] = []
    release = threading.Event()

    def first() -> None:
        with gate.place(wait=5):
            release.wait(5)

    def later(index: int) -> None:
        with gate.place(wait=5):
            order.append(index)

    holder = threading.Thread(target=first)
    holder.start()
    wait_until(lambda: gate._in_flight == 1)
    waiters = []
    for index in range(5):
        thread = threading.Thread(target=later, args=(index,))
        thread.start()
        waiters.append(thread)
        # Each waiter is in line before the next one arrives.
        wait_until(lambda index=index: gate.waiting == index + 1)
    release.set()
    for thread in [holder, *waiters]:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_a_turn_that_waits_too_long_is_refused_and_leaves_the_line():
    gate = Gate("bot", 1)
    with gate.place(wait=1):
        with pytest.raises(Busy):
            with gate.place(wait=0.05):
                pass
        assert gate.waiting == 0
    # The place is free again for the next one.
    with gate.place(wait=0.05):
        assert gate._in_flight == 1
    assert gate._in_flight == 0


def test_places_are_shared_up_to_the_limit():
    gate = Gate("bot", 2)
    with gate.place(wait=0.05), gate.place(wait=0.05):
        with pytest.raises(Busy):
            with gate.place(wait=0.05):
                pass
