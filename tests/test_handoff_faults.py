"""A handoff target that fails, and a host that leaves the config, against the real bots and chatroom.

The person starts with the real Helpdesk assistant and asks to go to the
stack's scripted host, which fails its arrival in one of three ways. Whatever
the way, the person stays with the Helpdesk, is told, and nothing they said is
lost: the transcript and the Helpdesk's tracker have every message.
"""
from __future__ import annotations

import json
import threading

import pytest

from chatroom import routing
from handoff.payload import ARRIVAL_INTENT
from tests.stack import Stack
from tests.test_handoff_stack import ASK_FOR_SOMEONE_ELSE, hand_over

pytestmark = pytest.mark.stack


def notices(state: dict) -> list[str]:
    return [message["text"] for message in state["messages"] if message["role"] == "notice"]


@pytest.mark.parametrize("fault", ["slow", "500", "empty"])
def test_a_target_that_is_slow_fails_or_answers_nothing_leaves_the_person_where_they_are(
    stack: Stack, monkeypatch, fault
):
    scripted = stack.scripted
    answer_normally = scripted.reply
    released = threading.Event()

    def fail_arrivals(sender: str, message: str):
        if not message.startswith(f"/{ARRIVAL_INTENT}"):
            return answer_normally(sender, message)
        scripted.received.append((sender, message))
        if fault == "slow":
            # Held past the turn's budget (CHATROOM_TURN_TIMEOUT), then let go by the test.
            released.wait(60)
            # Not answer_normally, which would record this arrival a second time.
            return [{"recipient_id": sender, "text": "Hello, too late."}]
        return 500 if fault == "500" else []

    monkeypatch.setattr(scripted, "reply", fail_arrivals)
    person = stack.person()
    person.start()
    person.say("hi")
    try:
        state = hand_over(person, "Scripted Desk")
    finally:
        released.set()
    conversation = person.conversation_id

    assert person.host == "helpdesk"
    assert notices(state) == [
        routing.TARGET_UNAVAILABLE.format(title="Scripted Desk", current="Helpdesk Assistant")
    ]
    assert [text for sender, text in scripted.received if sender == conversation] == [
        f'/handoff{{"from_host":"{stack.hosts["helpdesk"]}"}}'
    ]
    person.say("are you still there?")
    assert person.host == "helpdesk"
    assert person.texts("bot", host="helpdesk"), "the Helpdesk answers as before"
    transcript = person.start()["messages"]
    assert [m["text"] for m in transcript if m["role"] == "user"] == [
        "hi", ASK_FOR_SOMEONE_ELSE, "Scripted Desk", "are you still there?"
    ]
    helpdesk_heard = stack.user_texts("helpdesk", conversation)
    assert helpdesk_heard[:2] == ["hi", ASK_FOR_SOMEONE_ELSE]
    assert helpdesk_heard[-1] == "are you still there?"
    assert len(helpdesk_heard) == 4, helpdesk_heard


def test_a_host_removed_from_the_config_mid_conversation_moves_the_person_to_the_entry_host(stack: Stack):
    person = stack.person()
    person.start()
    person.say("hi")
    hand_over(person, "Scripted Desk")
    assert person.host == "scripted"
    conversation = person.conversation_id
    original = stack.config()
    try:
        without = json.loads(json.dumps(original))
        del without["handoff_hosts"]["scripted"]
        stack.write_config(without)

        state = person.say("are you still there?")
    finally:
        stack.write_config(original)

    assert person.host == "helpdesk"
    assert notices(state) == [routing.HOST_REMOVED.format(title="scripted", entry="Helpdesk Assistant")]
    assert stack.user_texts("helpdesk", conversation)[-1] == "are you still there?"
    assert "are you still there?" not in stack.scripted.messages_from(conversation)
    assert person.texts("bot", host="helpdesk"), "the entry host answers the message"
