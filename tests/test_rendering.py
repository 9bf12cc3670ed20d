"""Hostile text from bots and the config renders inert in headless Chromium."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.fakehost import HAND_TO_ID, FakeHost
from tests.processes import running_chatroom

pytestmark = pytest.mark.browser

PAYLOADS = [
    line for line in (Path(__file__).parent / "data" / "xss_payloads.txt").read_text().splitlines()
    if line and not line.startswith("# ")
]
# What the page itself creates inside the transcript; anything else was injected.
PAGE_TAGS = {"LI", "P", "DIV", "BUTTON", "A", "SPAN", "IMG"}


@pytest.fixture
def hostile_chatroom(tmp_path):
    entry, other = FakeHost(PAYLOADS[0]).start(), FakeHost(PAYLOADS[1]).start()

    scripted_reply = entry.reply

    def hostile_reply(sender, message):
        if message != "hello":
            return scripted_reply(sender, message)
        buttons = [{"title": p, "payload": f"{HAND_TO_ID}other"} for p in PAYLOADS]
        return (
            [{"text": p} for p in PAYLOADS]
            + [{"text": "Pick one", "buttons": buttons}]
            + [{"image": "javascript:alert(1)"}, {"image": "data:image/svg+xml,<svg onload=alert(1)>"}]
            + [{"text": "Docs: https://example.org/help. Not this: javascript:alert(1)"}]
        )

    entry.reply = hostile_reply
    config = {"handoff_hosts": {
        "entry": {"title": PAYLOADS[2], "url": entry.url},
        "other": {"title": PAYLOADS[4], "url": other.url},
    }}
    # The running chatroom (gunicorn, gevent), as people meet it.
    with running_chatroom(config, tmp_path) as chatroom:
        yield chatroom.url
    entry.stop()
    other.stop()


def test_hostile_text_titles_and_buttons_render_as_plain_text(hostile_chatroom, browser: Browser):
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(hostile_chatroom)
    expect(page.locator("#host-title")).to_have_text(PAYLOADS[2])

    page.fill("#message-input", "hello")
    page.press("#message-input", "Enter")
    expect(page.locator(".choice")).to_have_count(len(PAYLOADS))
    bot_texts = page.locator(".message-bot .message-text").all_text_contents()
    assert bot_texts[: len(PAYLOADS)] == PAYLOADS
    assert page.locator(".choice").all_text_contents() == PAYLOADS

    page.locator(".choice").nth(7).click()
    expect(page.locator("#host-title")).to_have_text(PAYLOADS[4])
    page.wait_for_timeout(300)

    injected = page.evaluate(
        """(allowed) => [...document.querySelectorAll('#messages *, header *')]
             .filter((el) => !allowed.includes(el.tagName) && el.tagName !== 'STRONG'
                              || [...el.attributes].some((a) => a.name.startsWith('on')))
             .map((el) => el.outerHTML)""",
        sorted(PAGE_TAGS),
    )
    assert injected == []
    assert dialogs == []
    images = page.locator("#messages img")
    assert all(src.startswith("http") for src in images.evaluate_all("els => els.map(e => e.src)"))
    links = page.locator("#messages a").evaluate_all("els => els.map(e => [e.href, e.rel, e.target])")
    assert ["https://example.org/help", "noopener noreferrer", "_blank"] in links
    for href, rel, target in links:
        assert href.startswith(("http://", "https://")) and "<" not in href and '"' not in href
        assert (rel, target) == ("noopener noreferrer", "_blank")
    page.close()


def test_page_sends_a_content_security_policy(hostile_chatroom, browser: Browser):
    page = browser.new_page()
    response = page.goto(hostile_chatroom)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.close()
