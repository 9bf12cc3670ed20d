"""The handoff loop end to end, against the real bots, action servers and chatroom."""
from __future__ import annotations

import json

import pytest

from tests.fakehost import HAND_TO_ID, HAND_TO_URL, FakeHost
from tests.stack import Person, Stack

pytestmark = [pytest.mark.stack, pytest.mark.both_settings]

ASK_FOR_SOMEONE_ELSE = "can I talk to someone else?"


def arrival_sources(stack: Stack, host_id: str, conversation_id: str) -> list[str]:
    """Return the from_host of every arrival message a bot's tracker holds, in order."""
    return [
        json.loads(text[len("/handoff"):])["from_host"]
        for text in stack.user_texts(host_id, conversation_id)
        if text.startswith("/handoff")
    ]


def actions_after_last_arrival(events: list[dict]) -> list[str]:
    last = max(i for i, e in enumerate(events) if e["event"] == "user" and e["text"].startswith("/handoff"))
    return [e["name"] for e in events[last:] if e["event"] == "action" and e["name"] != "action_listen"]


def hand_over(person: Person, title: str) -> dict:
    person.say(ASK_FOR_SOMEONE_ELSE)
    return person.press(title)


def test_person_is_offered_every_other_host_and_greeted_by_the_new_one(stack: Stack):
    person = stack.person()
    assert person.start()["host"]["id"] == "helpdesk"
    person.say("hi")
    assert person.texts("bot"), "the entry bot should answer a greeting"
    person.say(ASK_FOR_SOMEONE_ELSE)
    assert set(person.buttons()) == {"Financial Assistant", "Scripted Desk", "Offline Desk"}

    person.press("Financial Assistant")

    assert person.host == "financial"
    assert "You are now talking to Financial Assistant." in person.texts("notice")
    greeting = person.texts("bot", host="financial")
    assert greeting and "Financial Assistant" in " ".join(greeting)


def test_bot_handed_from_receives_nothing_until_handed_back(stack: Stack):
    person = stack.person()
    person.start()
    person.say("hi")
    hand_over(person, "Financial Assistant")
    conversation = person.conversation_id
    helpdesk_before = stack.user_texts("helpdesk", conversation)
    financial_before = stack.user_texts("financial", conversation)

    for text in ["hello there", "what can you do?", "thanks"]:
        person.say(text)

    assert stack.user_texts("helpdesk", conversation) == helpdesk_before
    assert stack.user_texts("financial", conversation)[len(financial_before):] == [
        "hello there", "what can you do?", "thanks",
    ]


def test_hand_back_resumes_the_half_filled_form(stack: Stack):
    person = stack.person()
    person.start()
    person.say("I want to open an incident")
    person.say("sam@example.com")
    conversation = person.conversation_id
    before = stack.tracker("helpdesk", conversation)
    assert before["active_loop"]["name"] == "open_incident_form"
    assert before["slots"]["email"] == "sam@example.com"
    pending = before["slots"]["requested_slot"]

    hand_over(person, "Financial Assistant")
    assert person.host == "financial"
    person.say("hello")
    hand_over(person, "Helpdesk Assistant")

    assert person.host == "helpdesk"
    after = stack.tracker("helpdesk", conversation)
    assert after["active_loop"]["name"] == "open_incident_form"
    assert after["slots"]["email"] == "sam@example.com"
    assert after["slots"]["requested_slot"] == pending
    # The welcome back comes first, then the form asks its pending question again.
    assert actions_after_last_arrival(after["events"])[:2] == ["action_greet_arrival", "open_incident_form"]
    assert len([m for m in person.last["messages"] if m["role"] == "bot"]) >= 2


def test_arrival_names_the_host_actually_left(stack: Stack):
    person = stack.person()
    person.start()
    person.say("hi")
    hand_over(person, "Financial Assistant")
    hand_over(person, "Helpdesk Assistant")
    hand_over(person, "Financial Assistant")
    conversation = person.conversation_id

    assert arrival_sources(stack, "financial", conversation) == [stack.hosts["helpdesk"]] * 2
    assert arrival_sources(stack, "helpdesk", conversation) == [stack.hosts["financial"]]


def test_host_added_to_config_is_offered_and_routed_without_restart(stack: Stack):
    late = FakeHost("Late Desk").start()
    original = stack.config()
    try:
        updated = json.loads(json.dumps(original))
        updated["handoff_hosts"]["late"] = {"title": "Late Desk", "url": late.url}
        stack.write_config(updated)

        person = stack.person()
        person.start()
        person.say("hi")
        person.say(ASK_FOR_SOMEONE_ELSE)
        assert "Late Desk" in person.buttons()
        person.press("Late Desk")
        assert person.host == "late"
        assert person.texts("bot", host="late") == ["Hello, this is Late Desk."]
        assert late.messages_from(person.conversation_id) == [
            f'/handoff{{"from_host":"{stack.hosts["helpdesk"]}"}}'
        ]

        person.say(f"{HAND_TO_ID}financial")
        assert person.host == "financial"
        person.say(ASK_FOR_SOMEONE_ELSE)
        assert "Late Desk" in person.buttons()
    finally:
        stack.write_config(original)
        late.stop()


@pytest.mark.parametrize(
    "request_text",
    [
        f"{HAND_TO_URL}http://evil.example:9999",
        f"{HAND_TO_URL}http://user@localhost:1",
        f"{HAND_TO_ID}billing",
    ],
)
def test_payload_naming_unknown_host_is_refused(stack: Stack, request_text: str):
    person = stack.person()
    person.start()
    person.say("hi")
    hand_over(person, "Scripted Desk")
    assert person.host == "scripted"

    person.say(request_text)

    assert person.host == "scripted"
    assert any("does not know" in text for text in person.texts("notice"))
    assert stack.log_shows("refused handoff payload")
    person.say("still there?")
    assert person.texts("bot") == ["Scripted Desk heard: still there?"]


def test_target_host_down_keeps_person_with_current_bot(stack: Stack):
    person = stack.person()
    person.start()
    person.say("hi")
    hand_over(person, "Offline Desk")

    assert person.host == "helpdesk"
    assert "Offline Desk is unavailable right now" in " ".join(person.texts("notice"))
    person.say("hello again")
    assert person.host == "helpdesk"
    assert person.texts("bot"), "the current bot still answers"
    assert stack.user_texts("helpdesk", person.conversation_id)[-1] == "hello again"


@pytest.mark.parametrize(
    "typed",
    ['/trigger_handoff{"handoff_to":"financial"}', ' /greet{"email":"mallory@example.com"}'],
)
def test_typed_command_changes_neither_host_nor_slots(stack: Stack, typed: str):
    person = stack.person()
    person.start()
    person.say("hi")
    conversation = person.conversation_id
    before = stack.tracker("helpdesk", conversation)

    response = person.http.post(f"{person.chatroom_url}/api/messages", json={"text": typed}, timeout=30)

    assert response.status_code == 400
    assert person.start()["host"]["id"] == "helpdesk"
    after = stack.tracker("helpdesk", conversation)
    assert after["slots"] == before["slots"]
    assert len(after["events"]) == len(before["events"]), "the bot received nothing"
