"""Latency of one message through the chatroom vs straight to the bot's REST webhook.

Run: .venv/bin/python -m bench.latency [--messages 200]
Both paths are measured in the same run, interleaved, against the same bot.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import time

import requests

from bench.measure import percentile, summary_ms, temporary_stack

TEXT = "hi"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per path (default 200)")
    args = parser.parse_args()
    with temporary_stack() as stack:
        person = stack.person()
        person.start()
        direct_sender = secrets.token_hex(8)
        webhook = f"{stack.hosts['helpdesk']}/webhooks/rest/webhook"
        http = requests.Session()
        via_chatroom, direct = [], []
        for _ in range(args.messages):
            started = time.perf_counter()
            person.say(TEXT)
            via_chatroom.append(time.perf_counter() - started)
            started = time.perf_counter()
            http.post(webhook, json={"sender": direct_sender, "message": TEXT}, timeout=30).raise_for_status()
            direct.append(time.perf_counter() - started)
    print(f"through the chatroom : {summary_ms(via_chatroom)}")
    print(f"straight to the bot  : {summary_ms(direct)}")
    print(
        f"ratio chatroom/direct: median {statistics.median(via_chatroom) / statistics.median(direct):.2f}x"
        f"   p99 {percentile(via_chatroom, 0.99) / percentile(direct, 0.99):.2f}x"
    )


if __name__ == "__main__":
    main()
