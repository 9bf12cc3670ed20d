"""Time from the person's choice to the new host's greeting, against the two bot round trips it needs.

Run: .venv/bin/python -m bench.handoff_latency [--handoffs 50]
A handoff through the chatroom costs one turn at the current bot (the button)
and one at the new bot (the arrival); the baseline makes those two calls directly.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import time

import requests

from bench.measure import summary_ms, temporary_stack
from handoff.payload import arrival_message, trigger_message

ASK = "can I talk to someone else?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handoffs", type=int, default=50, help="handoffs per path (default 50)")
    args = parser.parse_args()
    through, direct = [], []
    with temporary_stack() as stack:
        http = requests.Session()
        helpdesk, financial = stack.hosts["helpdesk"], stack.hosts["financial"]
        for _ in range(args.handoffs):
            person = stack.person()
            person.start()
            person.say(ASK)
            started = time.perf_counter()
            person.press("Financial Assistant")
            through.append(time.perf_counter() - started)
            assert person.host == "financial"

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
            direct.append(time.perf_counter() - started)
    print(f"handoff through the chatroom : {summary_ms(through)}")
    print(f"the two bot round trips      : {summary_ms(direct)}")
    overhead = statistics.median(through) - statistics.median(direct)
    print(f"overhead of the chatroom     : median {1000 * overhead:.1f} ms")


if __name__ == "__main__":
    main()
