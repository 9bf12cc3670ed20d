"""Time from the person's choice to the new host's greeting, against the two bot round trips it needs.

Run: .venv/bin/python -m bench.handoff_latency [--handoffs 50] [--runs 3] [--ref REF]
A handoff through the chatroom costs one turn at the current bot (the button)
and one at the new bot (the arrival); the baseline makes those two calls directly.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import time

import requests

from bench.measure import Figures, add_arguments, compare, latency_figures
from handoff.payload import arrival_message, trigger_message
from tests.stack import Stack

ASK = "can I talk to someone else?"


def through_chatroom(stack: Stack) -> float:
    """Return the time of one handoff through the chatroom, from the press to the greeting."""
    person = stack.person()
    person.start()
    person.say(ASK)
    started = time.perf_counter()
    person.press("Financial Assistant")
    took = time.perf_counter() - started
    if person.host != "financial":
        raise SystemExit(f"the handoff did not happen: {person.texts()}")
    return took


def straight(stack: Stack, http: requests.Session) -> float:
    """Return the time of the two bot calls a handoff needs, made directly."""
    helpdesk, financial = stack.hosts["helpdesk"], stack.hosts["financial"]
    sender = secrets.token_hex(8)
    webhook = f"{helpdesk}/webhooks/rest/webhook"
    http.post(webhook, json={"sender": sender, "message": ASK}, timeout=30).raise_for_status()
    started = time.perf_counter()
    for url, message in (
        (helpdesk, trigger_message("financial")),
        (financial, arrival_message(helpdesk)),
    ):
        http.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                  timeout=30).raise_for_status()
    return time.perf_counter() - started


def measure(stack: Stack, handoffs: int) -> Figures:
    """Time handoffs through the chatroom and the same two bot calls made directly, taking turns."""
    through: list[float] = []
    direct: list[float] = []
    http = requests.Session()
    for index in range(handoffs):
        # Each path goes first every other time.
        if index % 2:
            direct.append(straight(stack, http))
            through.append(through_chatroom(stack))
        else:
            through.append(through_chatroom(stack))
            direct.append(straight(stack, http))
    return {
        **latency_figures("handoff", through),
        **latency_figures("two bot calls", direct),
        "chatroom overhead, median ms": 1000 * (statistics.median(through) - statistics.median(direct)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handoffs", type=int, default=50, help="handoffs per path and run (default 50)")
    add_arguments(parser)
    args = parser.parse_args()
    compare(args, lambda stack, _run: measure(stack, args.handoffs), warm_up=lambda stack: measure(stack, 2))


if __name__ == "__main__":
    main()
