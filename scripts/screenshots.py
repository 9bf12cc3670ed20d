"""Take the README's screenshots: the chatroom, the operator console and the stats page.

Run: .venv/bin/python scripts/screenshots.py   (writes docs/*.png; needs `make install train browser`)
Starts the real stack with a desk, holds a few conversations, and photographs them. A
fresh stack has minutes of history, so before the stats page is photographed a week
of scripted handoffs is written through the store (the same way tests/test_desk_stats.py
writes its day), with the real conversations on top.
"""
from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatroom import store  # noqa: E402
from chatroom.store.engine import create_engine  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, send  # noqa: E402
from tests.stack import default_config, free_port, running_stack  # noqa: E402
from tests.test_desk_stats import Clock, Script  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
REASONS = [
    "I want to talk to a human about a refund",
    "let me speak to a real person",
    "can I talk to someone else?",
]
HISTORY_DAYS = 7
DESK_REASONS = ["asked_for_human", "asked_for_human", "asked_for_human", "not_understood", "loop_detected"]
BOT_REASONS = ["out_of_domain", "out_of_domain", "named_target"]
REPLY_SECONDS = [15, 25, 40, 60, 75, 90, 140, 240, 420]


def write_history(database: str, days: int = HISTORY_DAYS, seed: int = 11) -> int:
    """Write ``days`` of scripted conversations through the store, busier in office hours; return how many."""
    rng = random.Random(seed)
    now = time.time()
    clock = Clock(now)
    engine = create_engine(database)
    written = 0
    with ExitStack() as patches, engine.connect() as db:
        for module in Clock.READERS:
            patches.enter_context(mock.patch(f"{module}.time", clock))
        run = Script(db, clock, now)
        for hours_ago in range(days * 24, 0, -1):
            hour = time.localtime(now - hours_ago * 3600).tm_hour
            busy = 4 if 9 <= hour < 17 else 2 if 7 <= hour < 21 else 0
            for _ in range(rng.randint(0, busy)):
                written += 1
                history_conversation(run, db, rng, f"history-{written}", hours_ago - rng.random())
    engine.dispose()
    return written


def history_conversation(run: Script, db, rng: random.Random, conversation_id: str, hours_ago: float) -> None:
    """One conversation: it stays with the Helpdesk, moves to the Financial assistant, or goes to the desk."""
    run.at(hours_ago).start(conversation_id, "helpdesk")
    fate = rng.random()
    if fate < 0.5:
        return
    if fate < 0.7:
        run.switch(conversation_id, "financial", rng.choice(BOT_REASONS))
        return
    session_id = f"s-{conversation_id}"
    if fate < 0.75:
        stay = run.to_desk(conversation_id, session_id, None)
        store.mark_takeover(db, conversation_id, session_id, "alice")
    else:
        stay = run.to_desk(conversation_id, session_id, rng.choice(DESK_REASONS))
    wait = rng.choice(REPLY_SECONDS)
    if rng.random() < 0.15:
        run.at(hours_ago, wait).back(conversation_id, session_id, "helpdesk", "left", None)
        return
    run.at(hours_ago, wait).reply(stay)
    ending = run.at(hours_ago, wait + 300)
    if rng.random() < 0.55:
        ending.back(conversation_id, session_id, "helpdesk", "handed_back", "operator_handback")
    else:
        store.close_stay(db, session_id, "closed")


def main() -> None:
    config = default_config()
    config["handoff_hosts"]["human"] = {
        "title": "Support team", "url": f"http://localhost:{free_port(also_free_at=18)}", "kind": "parlant",
    }
    os.environ["CHATROOM_DESK_OPERATORS"] = "alice:secret"
    with tempfile.TemporaryDirectory() as root, running_stack(config, Path(root)) as stack:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            people = []
            for reason in REASONS:
                page = browser.new_context(viewport={"width": 720, "height": 760}).new_page()
                page.goto(stack.chatroom_url)
                send(page, "hi")
                send(page, reason)
                button = page.get_by_role("button", name="Support team")
                try:
                    button.wait_for(timeout=5000)
                except Exception:  # the bot read it differently; ask plainly
                    send(page, "can I talk to a person?")
                button.click()
                expect(page.locator("#host-title")).to_have_text("Support team")
                people.append(page)
            send(people[0], "it was charged twice last week")
            # Someone the console lists as talking to a bot.
            with_bot = browser.new_context().new_page()
            with_bot.goto(stack.chatroom_url)
            send(with_bot, "my email is broken")
            expect(with_bot.locator(".message-bot")).not_to_have_count(0)

            operator = browser.new_context(viewport={"width": 1200, "height": 760}).new_page()
            operator.goto(f"{stack.chatroom_url}/desk/login")
            operator.fill("input[name=name]", "alice")
            operator.fill("input[name=password]", "secret")
            operator.click("button[type=submit]")
            operator.locator("#queue-list .queue-open").first.click()
            operator.fill("#reply-input", "Hi, this is Alice from support. Let me look into it.")
            operator.press("#reply-input", "Enter")
            expect(people[0].locator(".message-sender").last).to_have_text("alice")
            operator.fill("#note-input", "Double charge: check the card payments log first")
            operator.press("#note-input", "Enter")
            expect(operator.locator(".line-note")).to_have_count(1)
            expect(operator.locator("#bots-list .queue-open")).not_to_have_count(0)
            operator.wait_for_timeout(500)
            operator.screenshot(path=DOCS / "console.png")
            people[0].screenshot(path=DOCS / "chatroom.png")

            operator.select_option("#hand-back-host", "financial")
            operator.click("#hand-back-button")
            expect(people[0].locator("#host-title")).to_have_text("Financial Assistant")
            write_history(str(stack.state_dir / "chatroom.sqlite"))
            operator.goto(f"{stack.chatroom_url}/desk/stats")
            operator.fill("#stats-days", str(HISTORY_DAYS))
            operator.select_option("#stats-by", "hour")
            operator.click("#stats-range button[type=submit]")
            expect(operator.locator("#stats-period")).to_contain_text("per hour")
            expect(operator.locator("#stats-timeline .slot")).to_have_count(HISTORY_DAYS * 24 + 1)
            operator.wait_for_timeout(500)
            operator.screenshot(path=DOCS / "stats.png", full_page=True)
            browser.close()
    print(f"wrote {', '.join(sorted(p.name for p in DOCS.glob('*.png')))} in {DOCS}")


if __name__ == "__main__":
    main()
