"""Take the README's screenshots: the chatroom, the operator console and the stats page.

Run: .venv/bin/python scripts/screenshots.py   (writes docs/*.png; needs `make install train browser`)
Starts the real stack with a desk, holds a few conversations, and photographs them.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import CHROMIUM, CHROMIUM_ARGS, send  # noqa: E402
from tests.stack import default_config, free_port, running_stack  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
REASONS = [
    "I want to talk to a human about a refund",
    "let me speak to a real person",
    "can I talk to someone else?",
]


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

            operator = browser.new_context(viewport={"width": 1200, "height": 760}).new_page()
            operator.goto(f"{stack.chatroom_url}/desk/login")
            operator.fill("input[name=name]", "alice")
            operator.fill("input[name=password]", "secret")
            operator.click("button[type=submit]")
            operator.locator(".queue-open").first.click()
            operator.fill("#reply-input", "Hi, this is Alice from support. Let me look into it.")
            operator.press("#reply-input", "Enter")
            expect(people[0].locator(".message-sender").last).to_have_text("alice")
            operator.wait_for_timeout(500)
            operator.screenshot(path=DOCS / "console.png")
            people[0].screenshot(path=DOCS / "chatroom.png")

            operator.select_option("#hand-back-host", "financial")
            operator.click("#hand-back-button")
            expect(people[0].locator("#host-title")).to_have_text("Financial Assistant")
            operator.goto(f"{stack.chatroom_url}/desk/stats")
            operator.wait_for_timeout(800)
            operator.screenshot(path=DOCS / "stats.png", full_page=True)
            browser.close()
    print(f"wrote {', '.join(sorted(p.name for p in DOCS.glob('*.png')))} in {DOCS}")


if __name__ == "__main__":
    main()
