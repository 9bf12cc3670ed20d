"""Many people at once: each holds a 10-turn conversation with one handoff and back.

Run: .venv/bin/python -m bench.load [--people 100] [--turns 10] [--think 3-8] [--runs 3] [--ref REF]
Each simulated person waits a random "thinking" time between turns (seconds,
uniform in the --think range; 0 sends back to back). A turn refused as busy
(HTTP 503 with Retry-After) is counted as busy and tried again after Retry-After,
at most three times. A turn answered with a notice that a host is not answering
or unavailable is counted once as unavailable, and the person stops there (the
rest of the script assumed that turn went through). Afterwards every bot's
tracker is read back and compared with what each person's answered turns sent
it: messages lost, misrouted or out of order must all be 0.
"""
from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from bench.measure import Figures, add_arguments, compare, latency_figures
from handoff.payload import arrival_message, trigger_message
from tests.stack import Person, Stack

ASK = "can I talk to someone else?"
BUSY_TRIES = 3
# Words of the chatroom's notices (chatroom/routing.py); old and new commits word them alike.
UNAVAILABLE_WORDS = ("not answering", "unavailable")
BUSY_WORDS = ("busy right now",)
OK, BUSY, UNAVAILABLE = "ok", "busy", "unavailable"
WARM_UP_PEOPLE = 4
# One pass through the script: a handoff there and back.
SCRIPT_TURNS = 10


@dataclass(frozen=True)
class Step:
    """One turn of the script: what the person does, and what each bot must receive for it."""

    kind: str  # "say" or "press"
    text: str
    deliveries: tuple[tuple[str, str], ...]


def script(stack: Stack, turns: int) -> list[Step]:
    """Return the first ``turns`` steps of the conversation, repeated if longer than one cycle."""
    helpdesk, financial = stack.hosts["helpdesk"], stack.hosts["financial"]
    cycle = [
        Step("say", "hi", (("helpdesk", "hi"),)),
        Step("say", "what can you do?", (("helpdesk", "what can you do?"),)),
        Step("say", ASK, (("helpdesk", ASK),)),
        Step("press", "Financial Assistant",
             (("helpdesk", trigger_message("financial")), ("financial", arrival_message(helpdesk)))),
        Step("say", "hello", (("financial", "hello"),)),
        Step("say", "what can you help with?", (("financial", "what can you help with?"),)),
        Step("say", "thanks", (("financial", "thanks"),)),
        Step("say", ASK, (("financial", ASK),)),
        Step("press", "Helpdesk Assistant",
             (("financial", trigger_message("helpdesk")), ("helpdesk", arrival_message(financial)))),
        Step("say", "bye", (("helpdesk", "bye"),)),
    ]
    return [cycle[i % len(cycle)] for i in range(turns)]


@dataclass
class Talker:
    """One person working through the script, and what each bot must (or may) have received."""

    person: Person
    steps: list[Step]
    done: int = 0
    seen: set[int] = field(default_factory=set)
    expected: dict[str, list[str]] = field(default_factory=dict)
    maybe: dict[str, set[str]] = field(default_factory=dict)
    turn_times: list[float] = field(default_factory=list)
    turn_started: list[float] = field(default_factory=list)  # perf_counter() at each timed turn's start
    busy: int = 0
    retry_after: float = 2.0
    unavailable: int = 0
    stopped: bool = False
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.stopped or self.done >= len(self.steps)

    def attempt(self) -> str:
        """Send the next step once; return ok, busy or unavailable (counted once per turn)."""
        step = self.steps[self.done]
        started = time.perf_counter()
        try:
            self.person.say(step.text) if step.kind == "say" else self.person.press(step.text)
        except requests.HTTPError as exc:
            response = exc.response
            if response is not None and response.status_code == 503 and "Retry-After" in response.headers:
                self.busy += 1
                self.retry_after = float(response.headers["Retry-After"])
                return BUSY
            raise
        self.turn_times.append(time.perf_counter() - started)
        self.turn_started.append(started)
        fresh = [m for m in self.person.last.get("messages", []) if m.get("id") not in self.seen]
        self.seen.update(m.get("id") for m in fresh)
        notices = " ".join(m.get("text", "") for m in fresh if m.get("role") == "notice")
        outcome = OK
        if any(word in notices for word in UNAVAILABLE_WORDS):
            outcome = UNAVAILABLE
            self.unavailable += 1
        elif any(word in notices for word in BUSY_WORDS):
            outcome = BUSY
            self.busy += 1
        for host, text in step.deliveries:
            if outcome == OK:
                self.expected.setdefault(host, []).append(text)
            else:
                # The chatroom may or may not have reached the host before giving up.
                self.maybe.setdefault(host, set()).add(text)
        if outcome != OK:
            self.stopped = True
        self.done += 1
        return outcome

    def take_turn(self) -> str:
        """Send the next step, trying again after Retry-After while it is refused as busy."""
        for _ in range(BUSY_TRIES):
            outcome = self.attempt()
            if outcome != BUSY or self.stopped:
                return outcome
            time.sleep(self.retry_after)
        self.stopped = True
        return BUSY


def converse(stack: Stack, index: int, turns: int, think: tuple[float, float]) -> Talker:
    """Hold one scripted conversation with pauses between turns."""
    pause = random.Random(index)
    talker = Talker(stack.person(), script(stack, turns))
    try:
        talker.person.start()
        while not talker.finished:
            time.sleep(pause.uniform(*think))
            talker.take_turn()
    except Exception as exc:  # a failed person is counted, not fatal to the run
        talker.error = f"person {index}: {type(exc).__name__}: {exc}"
        talker.stopped = True
    return talker


def check(stack: Stack, talker: Talker) -> tuple[int, int, int]:
    """Return (lost, misrouted, out_of_order) for one conversation, from the bots' trackers."""
    lost = misrouted = out_of_order = 0
    if not talker.expected and not talker.maybe:
        return 0, 0, 0
    conversation = talker.person.conversation_id
    hosts = set(talker.expected) | set(talker.maybe)
    for host in hosts:
        got = stack.user_texts(host, conversation)
        wanted = talker.expected.get(host, [])
        allowed = set(wanted) | talker.maybe.get(host, set())
        others = {text for other in hosts if other != host
                  for text in talker.expected.get(other, []) + list(talker.maybe.get(other, set()))}
        lost += sum(1 for text in wanted if text not in got)
        misrouted += sum(1 for text in got if text not in allowed and text in others)
        if [text for text in got if text in wanted] != [text for text in wanted if text in got]:
            out_of_order += 1
    return lost, misrouted, out_of_order


def check_all(stack: Stack, talkers: list[Talker]) -> tuple[int, int, int]:
    """Return the summed (lost, misrouted, out_of_order), reading trackers a few at a time."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda talker: check(stack, talker), talkers))
    return tuple(sum(column) for column in zip(*found)) if found else (0, 0, 0)


def turn_figures(talkers: list[Talker], elapsed: float) -> Figures:
    """Return the figures every crowd bench reports for a set of conversations."""
    turns = [t for talker in talkers for t in talker.turn_times]
    return {
        "turns": len(turns),
        "turns/s": len(turns) / elapsed if elapsed else 0.0,
        **latency_figures("turn", turns),
        "unavailable": sum(talker.unavailable for talker in talkers),
        "busy": sum(talker.busy for talker in talkers),
    }


def crowd(
    stack: Stack, people: int, turns: int, think: tuple[float, float], first: int = 0, rounds: int = 1
) -> Figures:
    """Let ``people`` hold their conversations at once; return turn figures and the trackers' check.

    With ``rounds`` > 1 each person starts a fresh conversation when one ends, ``rounds`` in all,
    numbered ``first`` to ``first + people * rounds - 1``: still ``people`` at once, more turns.
    """

    def person(i: int) -> list[Talker]:
        return [converse(stack, first + i + people * k, turns, think) for k in range(rounds)]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=people) as pool:
        talkers = [talker for own in pool.map(person, range(people)) for talker in own]
    elapsed = time.perf_counter() - started
    failed = [talker for talker in talkers if talker.error]
    for talker in failed[:3]:
        print(" ", talker.error, flush=True)
    lost, misrouted, out_of_order = check_all(stack, [t for t in talkers if not t.error])
    return {
        **turn_figures(talkers, elapsed),
        "lost": lost, "misrouted": misrouted, "out of order": out_of_order,
        "people who stopped early": sum(1 for talker in talkers if talker.stopped),
        "failed": len(failed),
    }


def warm_up(stack: Stack) -> None:
    """Take a few people through the whole script at once, so the first run pays no first-call costs."""
    crowd(stack, WARM_UP_PEOPLE, SCRIPT_TURNS, (0.0, 0.0), first=-WARM_UP_PEOPLE)


def parse_think(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100, help="simultaneous people (default 100)")
    parser.add_argument("--turns", type=int, default=SCRIPT_TURNS, help="turns per person (default 10)")
    parser.add_argument(
        "--think", default="3-8", help="seconds a person takes between turns, e.g. 3-8 (default) or 0"
    )
    add_arguments(parser)
    args = parser.parse_args()
    think = parse_think(args.think)
    print(f"{args.people} people, {args.turns} turns each, {args.think} s between turns, {args.runs} run(s)")
    # People are numbered per run, so both trees of a run meet the same pauses.
    compare(args, lambda stack, run: crowd(stack, args.people, args.turns, think, run * args.people),
            warm_up=warm_up)


if __name__ == "__main__":
    main()
