"""Many people at once: each holds a 10-turn conversation with one handoff and back.

Run: .venv/bin/python -m bench.load [--people 100] [--think 3-8]
Each simulated person waits a random "thinking" time between turns (seconds,
uniform in the --think range; 0 sends back to back). Afterwards every bot's
tracker is read back and compared with what each person sent while talking to
it: messages lost, misrouted or out of order must all be 0. Turns the chatroom
answered "unavailable" (the host did not reply within the turn budget) are
counted apart: the person was told, and stayed where they were.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.measure import summary_ms, temporary_stack
from handoff.payload import arrival_message, trigger_message
from tests.stack import Stack

ASK = "can I talk to someone else?"


@dataclass
class Outcome:
    conversation_id: str = ""
    turn_times: list[float] = field(default_factory=list)
    expected: dict[str, list[str]] = field(default_factory=dict)
    unavailable: int = 0
    error: str = ""


def converse(stack: Stack, index: int, think: tuple[float, float]) -> Outcome:
    """Hold one scripted conversation and record what each bot should have received."""
    outcome = Outcome()
    pause = random.Random(index)
    person = stack.person()
    helpdesk, financial = stack.hosts["helpdesk"], stack.hosts["financial"]
    script = [
        ("say", "hi", "helpdesk"),
        ("say", "what can you do?", "helpdesk"),
        ("say", ASK, "helpdesk"),
        ("press", "Financial Assistant", "helpdesk"),
        ("say", "hello", "financial"),
        ("say", "what can you help with?", "financial"),
        ("say", "thanks", "financial"),
        ("say", ASK, "financial"),
        ("press", "Helpdesk Assistant", "financial"),
        ("say", "bye", "helpdesk"),
    ]
    expected = {
        "helpdesk": ["hi", "what can you do?", ASK, trigger_message("financial"),
                     arrival_message(financial), "bye"],
        "financial": [arrival_message(helpdesk), "hello", "what can you help with?", "thanks", ASK,
                      trigger_message("helpdesk")],
    }
    try:
        person.start()
        for kind, text, _host in script:
            time.sleep(pause.uniform(*think))
            started = time.perf_counter()
            person.say(text) if kind == "say" else person.press(text)
            outcome.turn_times.append(time.perf_counter() - started)
            outcome.unavailable += sum(
                "not answering" in t or "unavailable" in t for t in person.texts("notice")
            )
        outcome.conversation_id = person.conversation_id
        outcome.expected = expected
    except Exception as exc:  # a failed person is counted, not fatal to the run
        outcome.error = f"person {index}: {type(exc).__name__}: {exc}"
    return outcome


def check(stack: Stack, outcome: Outcome) -> tuple[int, int, int]:
    """Return (lost, misrouted, out_of_order) for one conversation."""
    lost = misrouted = out_of_order = 0
    received = {host: stack.user_texts(host, outcome.conversation_id) for host in outcome.expected}
    for host, wanted in outcome.expected.items():
        got = received[host]
        others = [text for other, texts in outcome.expected.items() if other != host for text in texts]
        lost += sum(1 for text in wanted if text not in got)
        misrouted += sum(1 for text in got if text not in wanted and text in others)
        if [text for text in got if text in wanted] != [text for text in wanted if text in got]:
            out_of_order += 1
    return lost, misrouted, out_of_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100, help="simultaneous people (default 100)")
    parser.add_argument(
        "--think", default="3-8", help="seconds a person takes between turns, e.g. 3-8 (default) or 0"
    )
    args = parser.parse_args()
    low, _, high = args.think.partition("-")
    think = (float(low), float(high or low))
    with temporary_stack() as stack:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.people) as pool:
            outcomes = list(pool.map(lambda i: converse(stack, i, think), range(args.people)))
        elapsed = time.perf_counter() - started
        failed = [o for o in outcomes if o.error]
        # A person told a bot was unavailable knowingly left the script (they stayed
        # where they were); only conversations answered throughout are held to it.
        answered = [o for o in outcomes if not o.error and not o.unavailable]
        totals = [0, 0, 0]
        for outcome in answered:
            for i, value in enumerate(check(stack, outcome)):
                totals[i] += value
    turns = [t for o in outcomes for t in o.turn_times]
    unavailable = sum(o.unavailable for o in outcomes)
    print(f"people {args.people}, think time {args.think} s, turns {len(turns)}, wall time {elapsed:.1f} s")
    print(f"throughput   : {len(turns) / elapsed:.1f} turns/s")
    print(f"turn latency : {summary_ms(turns)}")
    print(f"people who could not finish the script: {len(failed)}")
    print(f"turns answered 'unavailable': {unavailable}")
    print(f"in the {len(answered)} conversations answered throughout: "
          f"lost {totals[0]}   misrouted {totals[1]}   out of order {totals[2]}")
    for outcome in failed[:5]:
        print(" ", outcome.error)
    print(json.dumps({"people": args.people, "think": args.think, "lost": totals[0], "misrouted": totals[1],
                      "out_of_order": totals[2], "unavailable": unavailable, "failed": len(failed)}))


if __name__ == "__main__":
    main()
