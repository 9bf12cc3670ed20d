"""Capacity: the turns per second the stack serves before a turn's p99 passes 1 s.

Run: .venv/bin/python -m bench.capacity [--start 2] [--factor 1.25] [--refine 2] [--seconds 20]
                                        [--turns 100] [--runs 3] [--ref REF]
Open-loop: turns arrive at a fixed rate whatever the stack's pace, each taken
by a person who is not mid-turn (a new one when nobody is free; starting their
conversation counts in that turn), working through bench/load.py's ten-turn
script with its handoff and back. A turn's time runs from when it was due, so a
queue in the bench is counted too. The rate grows by
--factor each step until a step's p99 passes --limit-ms or more than 1% of its
turns are refused as busy or answered "unavailable". A step that misses is
offered once more at the same rate, and only a second miss counts: with few
turns a step's p99 is its slowest turn, and one stray pause (a collection, a
start-up cost) must not end the ramp at 2 turns/s. Then --refine more steps
halve the gap (as a ratio) between the last rate held and the first missed, so
the figure is not rounded down to the --factor grid: with 1.25 and 2 refining
steps it is found within 6 %. Capacity is the achieved rate of the fastest
step within both limits. Each step offers at least --turns turns
(so p99 is not just the slowest one) over at least --seconds, and ends when its
last turn has been answered.
"""
from __future__ import annotations

import argparse
import math
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from bench.load import BUSY, SCRIPT_TURNS, UNAVAILABLE, Talker, script, warm_up
from bench.measure import Figures, add_arguments, compare, number, percentile
from tests.stack import Stack

REFUSED_SHARE = 0.01
MAX_IN_FLIGHT = 600


@dataclass
class Step:
    """One offered rate and what came of it."""

    offered: float
    times: list[float] = field(default_factory=list)
    busy: int = 0
    unavailable: int = 0
    failed: int = 0
    last_answer: float = 0.0

    def achieved(self, started: float, seconds: float) -> float:
        """Return answered turns per second, over the step or until its last answer if later."""
        return len(self.times) / max(seconds, self.last_answer - started) if self.times else 0.0

    def refused(self) -> int:
        return self.busy + self.unavailable + self.failed

    def within(self, limit: float, due: int) -> bool:
        if not self.times:
            return False
        return percentile(self.times, 0.99) <= limit and self.refused() <= REFUSED_SHARE * due


class Crowd:
    """People free to take the next turn; a new one joins when nobody is free."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.free: deque[Talker] = deque()
        self.lock = threading.Lock()

    def take(self) -> Talker:
        with self.lock:
            if self.free:
                return self.free.popleft()
        talker = Talker(self.stack.person(), script(self.stack, SCRIPT_TURNS))
        talker.person.start()
        return talker

    def give_back(self, talker: Talker) -> None:
        if not talker.finished:
            with self.lock:
                self.free.append(talker)


def turn(crowd: Crowd, step: Step, due: float, lock: threading.Lock) -> None:
    """Take one due turn and record its time from when it was due."""
    try:
        talker = crowd.take()
        answered_before = len(talker.turn_times)
        outcome = talker.attempt()
    except Exception:  # a failed turn is counted, not fatal to the step
        with lock:
            step.failed += 1
        return
    finished = time.perf_counter()
    with lock:
        step.busy += outcome == BUSY
        step.unavailable += outcome == UNAVAILABLE
        # A turn refused with 503 got no answer to time; a notice is an answer.
        if len(talker.turn_times) > answered_before:
            step.times.append(finished - due)
            step.last_answer = max(step.last_answer, finished)
    crowd.give_back(talker)


def offer(crowd: Crowd, pool: ThreadPoolExecutor, rate: float, due_count: int) -> tuple[Step, float]:
    """Offer ``due_count`` turns at ``rate``; return the step and when it started."""
    step, lock = Step(rate), threading.Lock()
    started = time.perf_counter()
    futures = []
    for k in range(due_count):
        due = started + k / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        futures.append(pool.submit(turn, crowd, step, due, lock))
    wait(futures)
    return step, started


class Search:
    """The offered rates: up by ``factor`` until one is missed, then ``refine`` halvings of the last gap.

    A rate counts as missed when two steps in a row at it miss.
    """

    def __init__(self, start: float, factor: float, refine: int, most: float) -> None:
        self.rate: float | None = start
        self.factor, self.refine_left, self.most = factor, refine, most
        self.held: float | None = None
        self.missed: float | None = None
        self.missed_once = False

    def record(self, within: bool) -> None:
        """Take whether the stack held the current rate and choose the next (None: done)."""
        if not within and not self.missed_once:
            self.missed_once = True  # the same rate again
            return
        self.missed_once = False
        if within:
            self.held = self.rate
        else:
            self.missed = self.rate
        if self.missed is None:
            self.rate = self.rate * self.factor
            if self.rate > self.most:
                self.rate = None
        elif self.held is None or self.refine_left == 0:
            self.rate = None
        else:
            self.refine_left -= 1
            self.rate = math.sqrt(self.held * self.missed)


def ramp(stack: Stack, args: argparse.Namespace) -> Figures:
    """Raise the offered rate step by step until the stack falls behind; print the steps."""
    crowd = Crowd(stack)
    limit = args.limit_ms / 1000
    rows = ["| offered turns/s | achieved turns/s | p50 ms | p99 ms | busy | unavailable | failed |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    print("\n".join(rows), flush=True)
    # Unknown until a step is within the limit: the first may already be past it.
    capacity = p99_at_capacity = float("nan")
    search = Search(args.start, args.factor, args.refine, args.max_rate)
    with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT) as pool:
        while search.rate is not None:
            rate = search.rate
            due = max(args.turns, round(rate * args.seconds))
            step, started = offer(crowd, pool, rate, due)
            ms = [t * 1000 for t in step.times] or [float("nan")]
            achieved = step.achieved(started, due / rate)
            cells = [rate, achieved, percentile(ms, 0.5), percentile(ms, 0.99)]
            counts = [step.busy, step.unavailable, step.failed]
            rows.append("| " + " | ".join([number(cell) for cell in cells] + [str(n) for n in counts]) + " |")
            print(rows[-1], flush=True)
            within = step.within(limit, due)
            # Refining steps are all faster than the fastest held so far.
            if within:
                capacity, p99_at_capacity = achieved, percentile(ms, 0.99)
            search.record(within)
    if capacity != capacity:
        print(f"p99 passed {number(args.limit_ms)} ms at the first step: start lower (--start)", flush=True)
    return {"capacity turns/s": capacity, "p99 ms at capacity": p99_at_capacity, "steps": len(rows) - 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=float, default=2.0, help="first offered rate, turns/s (default 2)")
    parser.add_argument("--factor", type=float, default=1.25, help="rate growth per step (default 1.25)")
    parser.add_argument("--refine", type=int, default=2,
                        help="steps halving the gap between the last rate held and the first missed (2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="shortest step (default 20 s)")
    parser.add_argument("--turns", type=int, default=100, help="fewest turns in a step (default 100)")
    parser.add_argument("--limit-ms", type=float, default=1000.0, help="p99 ending the ramp (default 1000)")
    parser.add_argument("--max-rate", type=float, default=200.0, help="stop here in any case (default 200)")
    add_arguments(parser)
    args = parser.parse_args()
    print(f"open-loop steps from {number(args.start)} turns/s, x{args.factor} each, "
          f"{number(args.seconds)} s each, until p99 > {number(args.limit_ms)} ms "
          f"or > {REFUSED_SHARE:.0%} refused, then {args.refine} refining step(s); {args.runs} run(s)")
    compare(args, lambda stack, _run: ramp(stack, args), warm_up=warm_up)


if __name__ == "__main__":
    main()
