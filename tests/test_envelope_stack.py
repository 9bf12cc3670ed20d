"""The handoff envelope on the real stack: a bot starts the task it was handed, the desk sees the context.

Both Rasa bots, their action servers, the desk and the chatroom (this module's
own stack, with a desk, as in test_desk_stack).
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest
import requests
from playwright.sync_api import Browser, expect

from tests.stack import API_TOKEN, Person, Stack
from tests.test_desk_stack import desk_stack, operator_session  # noqa: F401 - desk_stack is a fixture

pytestmark = pytest.mark.stack

CARD_REQUEST = "I want to pay my emblem card"
ASKS_CARD_AMOUNT = "How much would you like to pay on your emblem card?"
MASKED_SUMMARY = (
    'Task in progress: open incident form (email: s***@e***.com; waiting for priority). '
    f'Last request: "{CARD_REQUEST}".'
)


def stored_switches(stack: Stack, conversation_id: str) -> list[tuple[str, str, str, dict]]:
    """Return (from, to, reason code, envelope) of each switch the chatroom stored for a conversation."""
    with closing(sqlite3.connect(stack.state_dir / "chatroom.sqlite")) as db:
        rows = db.execute(
            "SELECT from_host, to_host, reason_code, envelope FROM switch"
            " WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        ).fetchall()
    return [(source, target, code, json.loads(envelope)) for source, target, code, envelope in rows]


def user_events(stack: Stack, host_id: str, conversation_id: str) -> list[dict]:
    return [e for e in stack.tracker(host_id, conversation_id)["events"] if e["event"] == "user"]


def card_request_at_the_helpdesk(stack: Stack, *before: str) -> Person:
    """Return a person who asked the Helpdesk to pay their emblem card (after saying ``before``)."""
    person = stack.person()
    person.start()
    for text in before:
        person.say(text)
    person.say(CARD_REQUEST)
    assert list(person.buttons())[0] == "Financial Assistant", "the other assistant is offered first"
    return person


def test_the_financial_assistant_starts_the_card_payment_it_was_handed(desk_stack: Stack):  # noqa: F811
    stack = desk_stack
    person = card_request_at_the_helpdesk(stack)
    person.press("Financial Assistant")

    assert person.host == "financial"
    said = person.texts("bot", host="financial")
    assert said[0] == (
        "Hi, you're now talking to the Financial Assistant. "
        "I've been told what you're after, so let's get straight to it."
    )
    assert said[1].startswith(ASKS_CARD_AMOUNT)
    conversation = person.conversation_id
    tracker = stack.tracker("financial", conversation)
    assert tracker["active_loop"]["name"] == "cc_payment_form"
    assert tracker["slots"]["credit_card"] == "emblem"
    assert tracker["slots"]["requested_slot"] == "amount-of-money"

    ((source, target, code, envelope),) = stored_switches(stack, conversation)
    assert (source, target, code) == ("helpdesk", "financial", "out_of_domain")
    handoff_id = envelope.pop("handoff_id")
    assert envelope == {
        "reason": "out_of_domain",
        "summary": f'Last request: "{CARD_REQUEST}".',
        "request": CARD_REQUEST,
        "language": "en",
        "from_host": stack.hosts["helpdesk"],
        "conversation_id": conversation,
    }
    # The arrival carried that envelope; the request followed as the person's next message, marked as such.
    arrival, request = user_events(stack, "financial", conversation)
    assert arrival["text"] == f'/handoff{{"from_host":"{stack.hosts["helpdesk"]}"}}'
    assert arrival["metadata"]["handoff"] == {**envelope, "handoff_id": handoff_id}
    assert arrival["metadata"]["handoff_request_follows"] is True
    assert (request["text"], request["metadata"]["handoff_request_of"]) == (CARD_REQUEST, handoff_id)

    # The person carries on with the form as if they had asked here.
    person.say("fifty dollars")
    assert stack.tracker("financial", conversation)["slots"]["requested_slot"] == "time"


def test_the_same_arrival_told_again_is_a_first_visit_and_its_request_is_not_fed_twice(
    desk_stack: Stack,  # noqa: F811
):
    stack = desk_stack
    person = card_request_at_the_helpdesk(stack)
    person.press("Financial Assistant")
    conversation = person.conversation_id
    arrival = user_events(stack, "financial", conversation)[0]

    # What the chatroom does to finish a handoff a crash cut short: the same arrival, the same envelope.
    again = requests.post(
        f"{stack.hosts['financial']}/webhooks/rest/webhook",
        json={
            "sender": conversation, "message": arrival["text"],
            "metadata": {"handoff": arrival["metadata"]["handoff"]},
        },
        params={"token": API_TOKEN},
        timeout=60,
    )
    again.raise_for_status()

    texts = [reply.get("text", "") for reply in again.json()]
    assert texts[0].startswith("Hi, you're now talking to the Financial Assistant."), texts
    assert not any("Welcome back" in text for text in texts)
    assert [e["text"] for e in user_events(stack, "financial", conversation)].count(CARD_REQUEST) == 1
    assert stack.tracker("financial", conversation)["active_loop"]["name"] == "cc_payment_form"


def hand_card_request_to_the_desk(stack: Stack) -> str:
    """Return a conversation the Helpdesk, mid-incident with an email, handed to the desk with the request."""
    person = card_request_at_the_helpdesk(
        stack, "my laptop screen flickers, please open a ticket", "sam@example.com"
    )
    person.press("Support team")
    assert person.host == "human"
    return person.conversation_id


def test_the_desk_console_shows_the_handoff_context_with_the_email_masked(desk_stack: Stack):  # noqa: F811
    stack = desk_stack
    conversation = hand_card_request_to_the_desk(stack)

    operator = operator_session(stack)
    view = operator.get(f"{stack.chatroom_url}/desk/api/conversations/{conversation}", timeout=30).json()
    context = view["context"]
    assert (context["reason"], context["request"]) == ("out_of_domain", CARD_REQUEST)
    assert context["summary"] == MASKED_SUMMARY
    assert context["slots"] == {"email": "s***@e***.com"}
    assert (context["from_host"]["id"], context["to_host"]["id"]) == ("helpdesk", "human")
    assert "sam@example.com" not in json.dumps(view["context"])


@pytest.mark.browser
def test_the_console_page_shows_the_context_panel(desk_stack: Stack, browser: Browser):  # noqa: F811
    stack = desk_stack
    conversation = hand_card_request_to_the_desk(stack)

    page = browser.new_context().new_page()
    page.goto(f"{stack.chatroom_url}/desk")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "secret")
    page.click("button[type=submit]")
    page.locator(f'.queue-open[data-conversation-id="{conversation}"]').click()

    panel = page.locator("#context")
    expect(panel).to_be_visible()
    expect(panel.locator(".context-reason")).to_have_text("out_of_domain")
    expect(panel.locator(".context-summary")).to_have_text(MASKED_SUMMARY)
    expect(panel.locator(".context-request")).to_have_text(CARD_REQUEST)
    expect(panel.locator(".context-slots li")).to_have_text(["email: s***@e***.com"])
    expect(panel).not_to_contain_text("sam@example.com")
    page.context.close()
