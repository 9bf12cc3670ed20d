"""Latency of a message through the chatroom ÷ the same message straight to the bot's REST webhook.

Run: .venv/bin/python -m bench.latency [--conversations 40] [--runs 3] [--ref REF]
Every conversation is fresh on both paths (a new person in the chatroom, a new
sender at the helpdesk's webhook) and gets the same few messages; the two paths
take turns message by message, each going first every other time, so both meet
the same machine. The figure that matters is the ratio of the medians.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import time

import requests

from bench.measure import Figures, add_arguments, compare, latency_figures
from tests.stack import Stack

TEXTS = ("hi", "what can you do?", "thanks")


def measure(stack: Stack, conversations: int) -> Figures:
    """Time each message on both paths in fresh conversations, interleaved."""
    webhook = f"{stack.hosts['helpdesk']}/webhooks/rest/webhook"
    http = requests.Session()
    via_chatroom: list[float] = []
    direct: list[float] = []
    for index in range(conversations):
        person = stack.person()
        person.start()
        sender = secrets.token_hex(8)
        paths = [
            (via_chatroom, lambda text, person=person: person.say(text)),
            (direct, lambda text, sender=sender: http.post(
                webhook, json={"sender": sender, "message": text}, timeout=30).raise_for_status()),
        ]
        for number, text in enumerate(TEXTS):
            # Each path goes first every other message.
            for times, send in paths if (index + number) % 2 else reversed(paths):
                started = time.perf_counter()
                send(text)
                times.append(time.perf_counter() - started)
    return {
        **latency_figures("chatroom", via_chatroom),
        **latency_figures("direct", direct),
        "chatroom / direct, median": statistics.median(via_chatroom) / statistics.median(direct),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=40,
                        help=f"fresh conversations per path and run, {len(TEXTS)} messages each (default 40)")
    add_arguments(parser)
    args = parser.parse_args()
    compare(args, lambda stack, _run: measure(stack, args.conversations),
            warm_up=lambda stack: measure(stack, 2))


if __name__ == "__main__":
    main()
