"""Long conversations on the real stack: the bots' tracker store cuts them short, nothing else changes.

The helpdesk's tracker store hands Rasa only the last 6 to 11 user messages of a
long conversation (handoff/rasa_stores.py); these tests hold conversations long
enough for several such cuts and check what a person and the tracker API see.
The long part goes straight to the bot's REST webhook, in the chatroom's
conversation: a person could not send that many messages a minute.
"""
from __future__ import annotations

import pytest
import requests
import yaml

from bench.talk import SCRIPTS
from handoff.config import REPO_ROOT
from tests.stack import Stack
from tests.test_handoff_stack import actions_after_last_arrival, hand_over

pytestmark = pytest.mark.stack

SCRIPT = SCRIPTS["helpdesk"]
CYCLES = 5  # 50 messages: the first cut comes after 12, then one every 6


def welcome_back(title: str) -> str:
    domain = yaml.safe_load((REPO_ROOT / "bots" / "helpdesk" / "domain.yml").read_text())
    return domain["responses"]["utter_welcome_back"][0]["text"].format(host_title=title)


def talk_long(stack: Stack, conversation: str) -> tuple[list[str], list[list[str]]]:
    """Send the helpdesk script's cycles straight to the bot; return what was sent and each reply's texts."""
    sent, replies = [], []
    webhook = f"{stack.hosts['helpdesk']}/webhooks/rest/webhook"
    for turn in range(CYCLES * len(SCRIPT)):
        sent.append(SCRIPT[turn % len(SCRIPT)])
        answer = requests.post(webhook, json={"sender": conversation, "message": sent[-1]}, timeout=60)
        answer.raise_for_status()
        replies.append([message.get("text", "") for message in answer.json()])
    return sent, replies


def test_every_cycle_of_a_long_conversation_is_answered_alike_and_kept_whole(stack: Stack):
    person = stack.person()
    person.start()
    sent, replies = talk_long(stack, person.conversation_id)

    # From the second cycle on, the bot knows the email, so every cycle goes the same way.
    cycles = [replies[start:start + len(SCRIPT)] for start in range(len(SCRIPT), len(replies), len(SCRIPT))]
    assert all(cycle == cycles[0] for cycle in cycles[1:])
    assert stack.user_texts("helpdesk", person.conversation_id) == sent


def test_return_after_a_long_conversation_is_welcomed_back_into_the_half_filled_form(stack: Stack):
    person = stack.person()
    person.start()
    talk_long(stack, person.conversation_id)
    person.say("I want to open an incident")
    conversation = person.conversation_id
    before = stack.tracker("helpdesk", conversation)
    assert before["active_loop"]["name"] == "open_incident_form"

    hand_over(person, "Financial Assistant")
    person.say("hello")
    hand_over(person, "Helpdesk Assistant")

    assert person.host == "helpdesk"
    assert welcome_back("Helpdesk Assistant") in person.texts("bot", host="helpdesk")
    after = stack.tracker("helpdesk", conversation)
    assert after["active_loop"]["name"] == "open_incident_form"
    assert after["slots"]["requested_slot"] == before["slots"]["requested_slot"]
    assert after["slots"]["previous_email"] == "kim.berg@example.com"
    assert actions_after_last_arrival(after["events"])[:2] == ["action_greet_arrival", "open_incident_form"]
