"""The handoff envelope a bot sends, and how an arriving bot greets: trackers built with Tracker.from_dict."""
import asyncio
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from handoff import arrival
from handoff.actions import ActionGreetArrival, ActionHandoff, handoff_cause, passed_slots, summarize
from handoff.envelope import REASONS
from tests.rasa_side.bots import load_domain
from tests.rasa_side.test_handoff_actions import config_file  # noqa: F401 - autouse: hosts and this bot's id

HELPDESK = load_domain("helpdesk")
FINANCIAL = load_domain("financial")
TRACKERS = Path(__file__).with_name("trackers")
BUTTON_FINANCIAL = '/trigger_handoff{"handoff_to":"financial"}'
HELPDESK_URL = "http://localhost:5005"


def user(text: str, intent: str, metadata: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    metadata = metadata or {}
    return {
        "event": "user", "text": text, "input_channel": "rest", "metadata": metadata,
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "metadata": metadata},
    }


def action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name}


def slot(name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def offer(*before: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The bot's offer of the hosts (after whatever it said first), then the person presses Financial."""
    return [*before, action("action_handoff_options"), slot("handoff_to", None), action("action_listen"),
            user(BUTTON_FINANCIAL, "trigger_handoff"), slot("handoff_to", "financial")]


def from_dict(
    events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None, active_loop: Optional[str] = None
) -> Tracker:
    latest = next((e for e in reversed(events) if e["event"] == "user"), None)
    return Tracker.from_dict({
        "sender_id": "c0ffee",
        "slots": slots or {},
        "latest_message": {**latest["parse_data"], "text": latest["text"]} if latest else {},
        "events": events,
        "active_loop": {"name": active_loop} if active_loop else {},
        "latest_action_name": "action_listen",
    })


def load(name: str) -> Tracker:
    return Tracker.from_dict(json.loads((TRACKERS / f"{name}.json").read_text()))


def run(action_: Any, tracker: Tracker, domain: Dict[str, Any]) -> Tuple[CollectingDispatcher, list]:
    dispatcher = CollectingDispatcher()
    return dispatcher, asyncio.run(action_.run(dispatcher, tracker, domain))


def handoff_message(tracker: Tracker, domain: Dict[str, Any] = HELPDESK) -> Dict[str, Any]:
    dispatcher, _ = run(ActionHandoff(), tracker, domain)
    (custom,) = [message["custom"] for message in dispatcher.messages if message.get("custom")]
    return custom


@pytest.mark.parametrize("events, reason, request_text", [
    pytest.param(
        [user("I want to pay my emblem card", "financial_request"), slot("handoff_to", "financial"),
         *offer(action("utter_other_assistant_can_help"))],
        "out_of_domain", "I want to pay my emblem card", id="a request for the other assistant",
    ),
    pytest.param(
        [user("how much is on my iron bank card", "financial_request"), slot("handoff_to", "financial"),
         action("utter_other_assistant_can_help"), action("action_handoff_options"), slot("handoff_to", None),
         action("action_listen"), user("the finance assistant please", "trigger_handoff")],
        "out_of_domain", "how much is on my iron bank card", id="the offer answered in words",
    ),
    pytest.param(
        [user("is there a person I could talk to", "human_handoff"), *offer(action("utter_ask_handoff"))],
        "asked_for_human", "is there a person I could talk to", id="asked for someone else",
    ),
    pytest.param(
        [user("could you transfer me", "ambiguous_transfer"), action("utter_ask_which_transfer"),
         action("action_listen"), user("/human_handoff", "human_handoff"),
         *offer(action("utter_ask_handoff"))],
        "asked_for_human", "could you transfer me", id="buttons lead back to the words typed",
    ),
    pytest.param(
        [user("please put me through to the banking assistant", "trigger_handoff"),
         slot("handoff_to", "financial")],
        "named_target", "please put me through to the banking assistant", id="named the assistant",
    ),
    pytest.param(
        [user("take me to the gadget bot", "trigger_handoff"), action("action_handoff"),
         slot("handoff_to", None), action("action_listen"), user(BUTTON_FINANCIAL, "trigger_handoff")],
        "named_target", "take me to the gadget bot", id="named a host it could not place",
    ),
    pytest.param(
        [user("flibber the gronk", "nlu_fallback"), action("utter_default"), action("action_listen"),
         user("wozzle plink", "nlu_fallback"), *offer(action("utter_ask_handoff"))],
        "not_understood", "wozzle plink", id="the second miss in a row",
    ),
])
def test_reason_and_request_come_from_what_led_to_the_handoff(events, reason, request_text):
    assert handoff_cause(events) == (reason, request_text)
    sent = handoff_message(from_dict(events, {"handoff_to": "financial"}))
    assert (sent["reason"], sent["request"]) == (reason, request_text)


def test_the_payload_keeps_its_keys_and_carries_the_envelope_beside_them():
    sent = handoff_message(load("helpdesk_card_request_in_incident_form"))
    assert sent == {
        "handoff_host": "http://localhost:5006",
        "title": "Financial Assistant",
        "handoff_to": "financial",
        "reason": "out_of_domain",
        "summary": 'Task in progress: open incident form (email: sam@example.com; waiting for priority). '
                   'Last request: "I want to pay my emblem card".',
        "slots": {"email": "sam@example.com"},
        "request": "I want to pay my emblem card",
        "language": "en",
    }


def test_the_bot_leaves_masking_to_the_chatroom():
    sent = handoff_message(load("helpdesk_card_request_in_incident_form"))
    assert "sam@example.com" in sent["summary"]
    assert sent["slots"]["email"] == "sam@example.com"


@pytest.mark.parametrize("events, reason", [
    ([], "asked_for_human"),
    ([user("hmm", "greet")], "asked_for_human"),
    ([user(BUTTON_FINANCIAL, "trigger_handoff")], "named_target"),
])
def test_the_reason_is_from_the_vocabulary_whatever_the_tracker_holds(events, reason):
    assert handoff_cause(events)[0] == reason
    assert reason in REASONS


def test_summary_of_a_half_filled_form_lists_its_filled_slots_and_the_pending_question():
    slots = {
        "AA_CONTINUE_FORM": True, "credit_card": "emblem", "amount-of-money": "$120.00", "time": None,
        "zz_confirm_form": None, "requested_slot": "time", "account_type": "credit", "next_form_name": None,
    }
    tracker = from_dict([user("pay my emblem card", "pay_cc")], slots, active_loop="cc_payment_form")
    assert summarize(tracker, FINANCIAL, "can a person check this first?") == (
        "Task in progress: cc payment form (credit card: emblem, amount-of-money: $120.00; "
        'waiting for time). Last request: "can a person check this first?".'
    )


def test_summary_without_a_task_names_what_is_known_and_the_request():
    tracker = from_dict([user("hi", "greet")], {"email": "kim@example.org", "handoff_to": None})
    assert summarize(tracker, HELPDESK, None) == "Known so far: email: kim@example.org."
    assert summarize(from_dict([]), HELPDESK, None) is None


def test_only_filled_slots_worth_passing_are_passed():
    slots = {
        "email": "sam@example.com", "priority": "high", "problem_description": "", "incident_title": None,
        "requested_slot": "confirm", "handoff_to": "financial", "confirm": True, "previous_email": "old@x.io",
        "caller_id": "sam@example.com", "session_started_metadata": {"a": 1},
        "AA_CONTINUE_FORM": True, "zz_confirm_form": False, "next_form_name": "cc_payment_form",
        "previous_form_name": None, "form_stash": {"cc_payment_form": {}}, "time_formatted": "May 4",
        "PERSON": "Ana", "amount-of-money": 20.5,
    }
    assert passed_slots(from_dict([], slots)) == {
        "email": "sam@example.com", "priority": "high", "PERSON": "Ana", "amount-of-money": 20.5,
    }


def arrival_event(handoff_id: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    metadata = {"handoff": {"reason": "out_of_domain", "handoff_id": handoff_id}} if handoff_id else {}
    return user(f'/handoff{{"from_host":"{HELPDESK_URL}"}}', "handoff", {**metadata, **extra})


def greeting(events: List[Dict[str, Any]], domain: Dict[str, Any] = FINANCIAL) -> str:
    dispatcher, result = run(ActionGreetArrival(), from_dict(events), domain)
    assert result == []
    (message,) = dispatcher.messages
    return message["response"]


@pytest.mark.parametrize("events, response", [
    pytest.param([arrival_event("h1")], "utter_handoff_arrival", id="first arrival"),
    pytest.param([arrival_event("h1"), arrival_event("h1")], "utter_handoff_arrival",
                 id="the same handoff told again"),
    pytest.param([arrival_event("h1"), user("pay my emblem card", "pay_cc", {arrival.REQUEST_OF: "h1"}),
                  user("fifty dollars", "inform"), arrival_event("h1")], "utter_handoff_arrival",
                 id="told again after its request and an answer"),
    pytest.param([user("hi", "greet"), arrival_event("h1"), arrival_event("h1")], "utter_welcome_back",
                 id="told again to someone who was here before"),
    pytest.param([arrival_event("h1"), user("thanks", "thankyou"), arrival_event("h2")], "utter_welcome_back",
                 id="a later handoff"),
    pytest.param([user("hi", "greet"), arrival_event()], "utter_welcome_back",
                 id="no handoff id, here before"),
    pytest.param([arrival_event()], "utter_handoff_arrival", id="no handoff id, first message"),
])
def test_a_repeated_arrival_of_one_handoff_is_not_a_return(events, response):
    assert greeting(events) == response


def test_an_arrival_whose_request_follows_is_greeted_without_a_question():
    follows = {arrival.REQUEST_FOLLOWS: True}
    assert greeting([arrival_event("h1", **follows)]) == "utter_handoff_arrival_request"
    assert greeting([user("hi", "greet"), arrival_event("h1", **follows)]) == "utter_welcome_back"
    # A bot without the optional response greets as usual.
    assert greeting([arrival_event("h1", **follows)], {"responses": {}}) == "utter_handoff_arrival"


@pytest.mark.parametrize("reason, request_text, forwarded", [
    ("out_of_domain", "I want to pay my emblem card", "I want to pay my emblem card"),
    ("named_target", "take me to finance to pay my card", "take me to finance to pay my card"),
    ("not_understood", "  pay emblm  ", "pay emblm"),
    ("asked_for_human", "can I talk to a person", None),
    ("operator_handback", "whatever", None),
    ("out_of_domain", '/restart', None),
    ("out_of_domain", None, None),
])
def test_only_a_request_about_a_task_is_forwarded(reason, request_text, forwarded):
    metadata = {"handoff": {"reason": reason, "request": request_text, "handoff_id": "h1"}}
    assert arrival.request_to_forward(f'/handoff{{"from_host":"{HELPDESK_URL}"}}', metadata) == forwarded
    assert arrival.request_to_forward("/handoffs", metadata) is None
    assert arrival.request_to_forward("hello", metadata) is None
