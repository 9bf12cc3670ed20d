"""The person's page and the console in headless Chromium: they show what is true, and operators step in.

What a page hides is not visible: the person's desk bar shows only while a desk
has them, "nobody is online" is said once, the console shows reply and hand-back
controls only for a chosen conversation. An operator watches a bot's
conversation, takes it over unprompted (the bot hears nothing), and hands it back.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import test_desk_browser
from tests.browser import send
from tests.test_desk import ASK_FOR_HUMAN

pytestmark = pytest.mark.browser

# A desk, the chatroom, and scripted bots alpha ("Alpha Bot", the entry) and beta, for this module.
bots, chatroom_url = test_desk_browser.bots, test_desk_browser.chatroom_url

CONSOLE_CONTROLS = ("#reply", "#reply-input", "#reply-as", "#take-button", "#hand-back-host",
                    "#hand-back-button", "#close-button")


def person_with_alpha(browser: Browser, url: str) -> Page:
    person = browser.new_context().new_page()
    person.goto(url)
    expect(person.locator("#host-title")).to_have_text("Alpha Bot")
    send(person, "hello")
    expect(person.locator(".message-bot").last).to_have_text("Alpha Bot heard: hello")
    return person


def person_at_desk(browser: Browser, url: str, reason: str) -> Page:
    person = person_with_alpha(browser, url)
    send(person, f"{ASK_FOR_HUMAN}{reason}")
    expect(person.locator("#host-title")).to_have_text("Support team")
    expect(person.locator("#desk-bar")).to_be_visible()
    expect(person.locator("#leave-desk")).to_have_text("Back to Alpha Bot")
    return person


def log_in(page, url: str) -> None:
    page.goto(f"{url}/desk/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "secret")
    page.click("button[type=submit]")


def test_before_any_desk_visit_there_is_no_desk_bar_and_no_empty_button(browser: Browser, chatroom_url: str):
    person = person_with_alpha(browser, chatroom_url)
    expect(person.locator("#desk-bar")).to_be_hidden()
    expect(person.locator("#leave-desk")).to_be_hidden()
    # The only buttons to see are the header's and the composer's.
    expect(person.locator("button:visible")).to_have_text(["Start over", "Send"])
    person.context.close()


# Before any test here opens the console: no operator is online yet.
def test_nobody_online_is_said_once(browser: Browser, chatroom_url: str):
    person = person_at_desk(browser, chatroom_url, "my card is blocked")
    nobody = person.get_by_text("is online right now")
    expect(nobody).to_have_count(1)
    expect(nobody).to_be_visible()
    expect(nobody).to_contain_text("Leave a message here: they will answer when they are back.")
    person.context.close()


def test_the_desk_bar_goes_when_the_person_goes_back_to_the_bot(browser: Browser, chatroom_url: str):
    person = person_at_desk(browser, chatroom_url, "my card is lost")
    person.click("#leave-desk")
    expect(person.locator("#host-title")).to_have_text("Alpha Bot")
    expect(person.locator("#desk-bar")).to_be_hidden()
    expect(person.locator("#desk-info")).to_be_hidden()
    expect(person.locator("#leave-desk")).to_be_hidden()
    person.context.close()


def test_the_console_shows_reply_controls_only_for_a_chosen_conversation_and_the_bar_goes_after_hand_back(
    browser: Browser, chatroom_url: str
):
    person = person_at_desk(browser, chatroom_url, "the printer is jammed")
    operator = browser.new_context().new_page()
    log_in(operator, chatroom_url)
    entry = operator.locator(".queue-open", has_text="the printer is jammed")
    expect(entry).to_be_visible()
    expect(operator.locator("#conversation")).to_be_hidden()
    for control in CONSOLE_CONTROLS:
        expect(operator.locator(control)).to_be_hidden()

    entry.click()
    for control in CONSOLE_CONTROLS:
        expect(operator.locator(control)).to_be_visible()
    expect(operator.locator("#hand-back-host option")).to_have_text(["Alpha Bot", "Beta Bot"])
    expect(person.locator("#desk-info")).to_contain_text("Support team is online.")

    operator.select_option("#hand-back-host", "beta")
    operator.click("#hand-back-button")
    expect(person.locator("#host-title")).to_have_text("Beta Bot")
    expect(person.locator(".message-bot").last).to_have_text("Hello, this is Beta Bot.")
    expect(person.locator("#desk-bar")).to_be_hidden()
    expect(person.locator("#desk-info")).to_be_hidden()
    expect(person.locator("#leave-desk")).to_be_hidden()
    person.context.close()
    operator.context.close()


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
