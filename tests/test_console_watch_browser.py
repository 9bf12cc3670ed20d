"""In headless Chromium: an operator watches a bot's conversation, takes it over unprompted, hands it back."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests import test_desk_browser
from tests.browser import send

pytestmark = pytest.mark.browser

# A desk, the chatroom on gunicorn, and scripted bots alpha ("Alpha Bot") and beta, for this module.
bots, chatroom_url = test_desk_browser.bots, test_desk_browser.chatroom_url


def log_in(page, url: str) -> None:
    page.goto(f"{url}/desk/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "secret")
    page.click("button[type=submit]")


def test_operator_takes_over_a_bot_conversation_the_bot_hears_nothing_then_resumes(
    browser: Browser, chatroom_url: str, bots
):
    person = browser.new_context().new_page()
    person.goto(chatroom_url)
    send(person, "my printer is smoking")
    expect(person.locator(".message-bot").last).to_have_text("Alpha Bot heard: my printer is smoking")

    operator = browser.new_context().new_page()
    log_in(operator, chatroom_url)
    expect(operator.locator("#conversation")).to_be_hidden()
    entry = operator.locator("#bots-list .queue-open", has_text="my printer is smoking")
    expect(entry).to_contain_text("Alpha Bot")
    conversation_id = entry.get_attribute("data-conversation-id")
    entry.click()

    # Read-only while the bot has it, and live.
    expect(operator.locator("#transcript")).to_contain_text("Alpha Bot heard: my printer is smoking")
    expect(operator.locator("#reply")).to_be_hidden()
    expect(operator.locator("#desk-actions")).to_be_hidden()
    expect(operator.locator("#take-over-button")).to_be_visible()
    send(person, "now there are flames")
    expect(operator.locator(".line-bot").last).to_contain_text("Alpha Bot heard: now there are flames")
    heard = list(bots["alpha"].messages_from(conversation_id))
    assert heard[-1] == "now there are flames"

    operator.click("#take-over-button")
    expect(person.locator("#host-title")).to_have_text("Support team")
    joined = "alice from Support team joined the conversation."
    expect(person.locator(".message-notice").last).to_have_text(joined)
    expect(person.locator("#desk-bar")).to_be_visible()
    expect(operator.locator("#reply")).to_be_visible()
    expect(operator.locator("#watch-actions")).to_be_hidden()
    expect(operator.locator("#conversation-meta")).to_contain_text("taken by alice")

    send(person, "who is this?")
    expect(operator.locator(".line-user").last).to_contain_text("who is this?")
    operator.fill("#reply-input", "Alice from support. Unplug it, please.")
    operator.press("#reply-input", "Enter")
    expect(person.locator(".message-bot").last.locator(".message-text")).to_have_text(
        "Alice from support. Unplug it, please."
    )
    operator.fill("#note-input", "Printer fire: tell facilities")
    operator.press("#note-input", "Enter")
    expect(operator.locator(".line-note")).to_contain_text("Printer fire: tell facilities")
    assert bots["alpha"].messages_from(conversation_id) == heard, "the bot heard nothing after the takeover"

    operator.select_option("#hand-back-host", "alpha")
    operator.click("#hand-back-button")
    expect(person.locator("#host-title")).to_have_text("Alpha Bot")
    expect(person.locator(".message-bot").last).to_have_text("Hello, this is Alpha Bot.")
    expect(person.locator("#desk-bar")).to_be_hidden()
    send(person, "it is out now")
    expect(person.locator(".message-bot").last).to_have_text("Alpha Bot heard: it is out now")
    arrival, after = bots["alpha"].messages_from(conversation_id)[len(heard):]
    assert (arrival.startswith('/handoff{"from_host":"http://127.0.0.1:'), after) == (True, "it is out now")
    expect(person.get_by_text("Printer fire")).to_have_count(0)
