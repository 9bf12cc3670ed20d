"""Scripted conversations the turn benchmarks send, straight to a bot or through the chatroom.

Each bot's script is one cycle of ten turns that opens a form and leaves it, so it
can repeat for as long as a benchmark needs and every cycle costs the bot the same
mix of NLU, policies, form validation and custom actions.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import requests

from tests.stack import Stack

SCRIPTS: dict[str, list[str]] = {
    "helpdesk": [
        "hi",
        "what can you do?",
        "report a problem",
        "my email is kim.berg@example.com",
        "low",
        "the office wifi is slow in the afternoon",
        "slow wifi",
        "no, cancel",
        "thanks very much",
        "wait, are you a robot?",
    ],
    "financial": [
        "hello there",
        "what's my balance?",
        "who can I send money to?",
        "pay the full balance on my iron bank card tomorrow",
        "no",
        "is there a fee for transfers?",
        "how much did I earn in January 2019?",
        "actually no",
        "thanks very much",
        "wait, are you a robot?",
    ],
}


def script_turn(bot: str, index: int) -> str:
    """Return the text of turn ``index`` (0-based) of the bot's repeating script."""
    script = SCRIPTS[bot]
    return script[index % len(script)]


def direct_sender(stack: Stack, bot: str) -> Callable[[str], float]:
    """Return a function that sends one message straight to the bot's REST webhook, in one
    fresh conversation, and returns the seconds the answer took."""
    http = requests.Session()
    url = f"{stack.hosts[bot]}/webhooks/rest/webhook"
    sender = f"bench-{secrets.token_hex(8)}"

    def send(text: str) -> float:
        started = time.perf_counter()
        http.post(url, json={"sender": sender, "message": text}, timeout=60).raise_for_status()
        return time.perf_counter() - started

    return send


def chatroom_sender(stack: Stack, bot: str) -> Callable[[str], float]:
    """Return a function that sends one message through the chatroom, in one fresh
    conversation with ``bot`` (the entry host), and returns the seconds it took."""
    person = stack.person()
    person.start()
    if person.host != bot:
        raise SystemExit(f"the chatroom greets with {person.host!r}, not {bot!r}: pick the entry host")

    def send(text: str) -> float:
        started = time.perf_counter()
        person.say(text)
        return time.perf_counter() - started

    return send
