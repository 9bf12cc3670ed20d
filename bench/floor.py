"""The floor: what the chatroom's own work costs per message, against an instant host.

Run: .venv/bin/python -m bench.floor [--messages 200] [--runs 3] [--ref REF]
The chatroom's only host is bench/stub_host.py, which answers Rasa's REST
channel at once. Three requests take turns: a message through the chatroom, a
bare endpoint on the same gunicorn worker (GET /healthz) and the same message
straight to the stub. A message's own cost is its time less the bare endpoint's
and the stub's. Then the chatroom's CPU time is read from /proc around a block
of bare requests and a block of messages: CPU ms per request, noise-proof on a
busy machine.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import time
from collections.abc import Callable

import requests

from bench.measure import Figures, add_arguments, compare, cpu_seconds, latency_figures, processes_running
from bench.stub_host import stub_host
from tests.stack import Stack

TEXT = "hi"
# A person is replaced now and then, so no conversation grows long.
TURNS_PER_PERSON = 20


def config_for(stub_url: str) -> dict:
    return {"handoff_hosts": {"stub": {"title": "Instant Stub", "url": stub_url}}, "entry": "stub"}


class Messages:
    """Messages through the chatroom, a new person every TURNS_PER_PERSON."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sent = 0
        self.person = stack.person()

    def send(self) -> None:
        if self.sent % TURNS_PER_PERSON == 0:
            self.person = self.stack.person()
            self.person.start()
        self.sent += 1
        self.person.say(TEXT)


def cpu_per_request(pids: list[int], request: Callable[[], object], count: int) -> float:
    """Return the chatroom's CPU ms per request over ``count`` requests."""
    before = cpu_seconds(pids)
    for _ in range(count):
        request()
    return 1000 * (cpu_seconds(pids) - before) / count


def measure(stack: Stack, count: int) -> Figures:
    http = requests.Session()
    healthz = f"{stack.chatroom_url}/healthz"
    webhook = f"{stack.hosts['stub']}/webhooks/rest/webhook"
    sender = secrets.token_hex(8)
    messages = Messages(stack)
    times: dict[str, list[float]] = {"message": [], "bare": [], "stub": []}
    calls = {
        "message": messages.send,
        "bare": lambda: http.get(healthz, timeout=10).raise_for_status(),
        "stub": lambda: http.post(
            webhook, json={"sender": sender, "message": TEXT}, timeout=10
        ).raise_for_status(),
    }
    order = list(calls)
    for index in range(count):
        # Rotate who goes first, so none always follows the same request.
        for name in order[index % 3:] + order[:index % 3]:
            started = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - started)
    pids = processes_running(stack.pid, "chatroom")
    cpu_bare = cpu_per_request(pids, calls["bare"], count)
    cpu_message = cpu_per_request(pids, calls["message"], count)
    median = {name: statistics.median(values) for name, values in times.items()}
    own = median["message"] - median["bare"] - median["stub"]
    return {
        **latency_figures("message", times["message"]),
        **latency_figures("bare endpoint", times["bare"]),
        "stub direct median ms": 1000 * statistics.median(times["stub"]),
        "message's own work, median ms": 1000 * own,
        "chatroom CPU ms per message": cpu_message,
        "chatroom CPU ms per bare request": cpu_bare,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="requests of each kind a run (200)")
    add_arguments(parser)
    args = parser.parse_args()
    with stub_host() as url:
        compare(args, lambda stack, _run: measure(stack, args.messages), config=lambda: config_for(url),
                warm_up=lambda stack: measure(stack, 10))


if __name__ == "__main__":
    main()
