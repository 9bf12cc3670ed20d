"""A person and an operator, each in headless Chromium: presence, typing, a message each way, a hand-back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from playwright.sync_api import Browser, expect

from tests.browser import send
from tests.fakehost import FakeHost
from tests.stack import free_port
from tests.test_desk import ASK_FOR_HUMAN, ReasoningHost, running_chatroom, running_desk

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chatroom_url(bots, tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("desk-browser")
    desk_port, chatroom_port = free_port(also_free_at=18), free_port()
    desk_url = f"http://127.0.0.1:{desk_port}"
    config_path = root / "handoff_config.yml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "handoff_hosts": {
                    **{host_id: {"title": host.title, "url": host.url} for host_id, host in bots.items()},
                    "human": {"title": "Support team", "url": desk_url, "kind": "parlant"},
                }
            }
        )
    )
    log = root / "processes.log"
    with running_desk(config_path, root / "state", desk_url, log):
        with running_chatroom(config_path, root / "state", chatroom_port, log):
            yield f"http://127.0.0.1:{chatroom_port}"


@pytest.fixture(scope="module")
def bots():
    started = {"alpha": ReasoningHost("Alpha Bot").start(), "beta": FakeHost("Beta Bot").start()}
    yield started
    for host in started.values():
        host.stop()


def test_person_and_operator_talk_and_the_operator_hands_back(browser: Browser, chatroom_url: str):
    # Two contexts: the person's and the operator's cookies stay apart.
    person = browser.new_context().new_page()
    person.goto(chatroom_url)
    expect(person.locator("#host-title")).to_have_text("Alpha Bot")
    send(person, f"{ASK_FOR_HUMAN}my card is blocked")
    expect(person.locator("#host-title")).to_have_text("Support team")
    # Nobody has the console open yet: the person is told at once, once, with the way back.
    expect(person.locator("#desk-info")).to_contain_text("Nobody from Support team is online right now.")
    expect(person.get_by_text("is online right now")).to_have_count(1)
    expect(person.locator("#leave-desk")).to_have_text("Back to Alpha Bot")

    operator = browser.new_context().new_page()
    operator.goto(f"{chatroom_url}/desk")
    expect(operator).to_have_url(f"{chatroom_url}/desk/login?next=/desk")
    operator.fill("input[name=name]", "alice")
    operator.fill("input[name=password]", "secret")
    operator.click("button[type=submit]")
    entry = operator.locator(".queue-open", has_text="my card is blocked")
    expect(entry).to_contain_text("Alpha Bot")
    expect(operator.locator('.operator[data-operator="alice"] .operator-state')).to_have_text("online")
    expect(operator.locator('.operator[data-operator="bob"] .operator-state')).to_have_text("offline")
    expect(person.locator("#desk-info")).to_contain_text("Support team is online.")
    operator.select_option("#presence", "away")
    expect(operator.locator('.operator[data-operator="alice"] .operator-state')).to_have_text("away")
    expect(person.locator("#desk-info")).to_contain_text("Nobody from Support team is online right now.")
    operator.select_option("#presence", "online")
    expect(operator.locator('.operator[data-operator="alice"] .operator-state')).to_have_text("online")
    entry.click()
    expect(operator.locator("#transcript")).to_contain_text("Let me find you a person.")

    send(person, "is anybody there?")
    expect(operator.locator(".line-user").last).to_have_text("Personis anybody there?")

    expect(person.locator("#typing")).to_be_hidden()
    operator.locator("#reply-input").press_sequentially("Hi, this is Alice. ", delay=20)
    expect(person.locator("#typing")).to_have_text("alice is typing…")
    operator.locator("#reply-input").press_sequentially("<b>Let me look.</b>", delay=20)
    operator.press("#reply-input", "Enter")
    reply = person.locator(".message-bot").last
    expect(reply.locator(".message-text")).to_have_text("Hi, this is Alice. <b>Let me look.</b>")
    expect(reply.locator(".message-sender")).to_have_text("alice")
    expect(person.locator("#typing")).to_be_hidden()

    operator.select_option("#hand-back-host", "beta")
    operator.click("#hand-back-button")
    expect(person.locator("#host-title")).to_have_text("Beta Bot")
    expect(person.locator(".message-bot").last).to_have_text("Hello, this is Beta Bot.")
    expect(operator.locator("#reply-input")).to_be_disabled()
    expect(operator.locator(".queue-open", has_text="my card is blocked")).to_have_count(0)
