"""The shared handoff actions, run with rasa-sdk's own Tracker and CollectingDispatcher."""
import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff import hours
from handoff.actions import ActionGreetArrival, ActionHandoff, ActionHandoffOptions

CONFIG = """\
handoff_hosts:
  helpdesk:
    title: Helpdesk Assistant
    url: http://localhost:5005
  financial:
    title: Financial Assistant
    url: http://localhost:5006
  human:
    title: Support team
    url: http://localhost:8800
    kind: parlant
"""


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "handoff_config.yml"
    path.write_text(CONFIG)
    monkeypatch.setenv("HANDOFF_CONFIG", str(path))
    monkeypatch.setenv("HANDOFF_HOST_ID", "helpdesk")
    return path


def user(text: str, intent: str, channel: str = "rest") -> Dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 1.0}, "entities": []},
        "input_channel": channel,
    }


def tracker(events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None) -> Tracker:
    latest = events[-1] if events else {}
    return Tracker("person-1", slots or {}, latest, events, False, None, {}, "action_listen")


def run(action, tracker_: Tracker) -> "tuple[CollectingDispatcher, list]":
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker_, {}))
    return dispatcher, events


def test_options_offer_every_other_host_and_never_itself():
    dispatcher, events = run(ActionHandoffOptions(), tracker([user("a person please", "human_handoff")]))
    buttons = dispatcher.messages[0]["buttons"]
    assert [b["title"] for b in buttons] == ["Financial Assistant", "Support team"]
    assert buttons[0]["payload"] == '/trigger_handoff{"handoff_to":"financial"}'
    assert events == [SlotSet("handoff_to", None)]


def test_options_offer_the_host_named_in_the_slot_first():
    events = [user("is my password the same for the bank?", "human_handoff")]
    dispatcher, _ = run(ActionHandoffOptions(), tracker(events, {"handoff_to": "human"}))
    assert [b["title"] for b in dispatcher.messages[0]["buttons"]] == ["Support team", "Financial Assistant"]


def test_options_pick_up_a_host_added_to_the_file(config_file: Path):
    run(ActionHandoffOptions(), tracker([user("help", "human_handoff")]))
    config_file.write_text(CONFIG + "  billing:\n    title: Billing Bot\n    url: http://localhost:5010\n")
    dispatcher, _ = run(ActionHandoffOptions(), tracker([user("help", "human_handoff")]))
    assert "Billing Bot" in [b["title"] for b in dispatcher.messages[0]["buttons"]]


def test_options_with_no_other_host_say_so(config_file: Path):
    config_file.write_text("handoff_hosts:\n  helpdesk:\n    title: H\n    url: http://localhost:5005\n")
    dispatcher, _ = run(ActionHandoffOptions(), tracker([user("help", "human_handoff")]))
    assert dispatcher.messages[0]["response"] == "utter_no_handoff"


def test_handoff_sends_the_payload_with_url_title_id_and_the_envelope():
    events = [
        user("my card was charged twice", "human_handoff"),
        {"event": "action", "name": "action_handoff_options"},
        user('/trigger_handoff{"handoff_to":"financial"}', "trigger_handoff"),
    ]
    dispatcher, result = run(ActionHandoff(), tracker(events, {"handoff_to": "financial"}))
    assert dispatcher.messages[0]["response"] == "utter_handoff"
    assert dispatcher.messages[0]["host_title"] == "Financial Assistant"
    assert dispatcher.messages[1]["custom"] == {
        "handoff_host": "http://localhost:5006",
        "title": "Financial Assistant",
        "handoff_to": "financial",
        "reason": "asked_for_human",
        "summary": 'Last request: "my card was charged twice".',
        "request": "my card was charged twice",
        "language": "en",
    }
    assert result == [SlotSet("handoff_to", None)]


@pytest.mark.parametrize("target", ["billing", "computer help bot", "helpdesk", None])
def test_handoff_to_an_unknown_host_or_itself_offers_the_other_hosts_instead(target):
    events = [user("take me to the computer help bot", "trigger_handoff")]
    dispatcher, result = run(ActionHandoff(), tracker(events, {"handoff_to": target}))
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_handoff", None]
    assert [b["title"] for b in dispatcher.messages[1]["buttons"]] == ["Financial Assistant", "Support team"]
    assert not any(m.get("custom") for m in dispatcher.messages)
    assert result == [SlotSet("handoff_to", None)]


def test_handoff_outside_the_chatroom_says_what_it_would_have_done():
    events = [user("x", "trigger_handoff", channel="cmdline")]
    dispatcher, _ = run(ActionHandoff(), tracker(events, {"handoff_to": "financial"}))
    assert [m["response"] for m in dispatcher.messages] == ["utter_wouldve_handed_off"]
    assert dispatcher.messages[0]["host_title"] == "Financial Assistant"


def test_arrival_greets_a_newcomer_by_this_bots_title():
    arrival = user(json.dumps({"from_host": "http://localhost:5006"}), "handoff")
    dispatcher, _ = run(ActionGreetArrival(), tracker([arrival]))
    assert dispatcher.messages[0]["response"] == "utter_handoff_arrival"
    assert dispatcher.messages[0]["host_title"] == "Helpdesk Assistant"


def test_arrival_welcomes_back_someone_who_was_here_before():
    events = [user("hi", "greet"), user("/handoff", "handoff")]
    dispatcher, _ = run(ActionGreetArrival(), tracker(events))
    assert dispatcher.messages[0]["response"] == "utter_welcome_back"


DESK_HOURS = """\
    hours:
      timezone: Europe/Berlin
      open:
        mon-fri: "09:00-17:00"
"""


@pytest.mark.parametrize("at, title", [
    # 2026-03-13 is a Friday.
    ((2026, 3, 13, 18, 30), "Support team (closed, opens on Monday at 09:00 Berlin time)"),
    ((2026, 3, 13, 7, 0), "Support team (closed, opens today at 09:00 Berlin time)"),
    ((2026, 3, 13, 10, 0), "Support team"),
])
def test_options_say_when_a_desk_outside_its_hours_opens(config_file: Path, monkeypatch, at, title):
    config_file.write_text(CONFIG + DESK_HOURS)
    monkeypatch.setattr(hours, "now", lambda: datetime(*at, tzinfo=hours.ZoneInfo("Europe/Berlin")))
    dispatcher, _ = run(ActionHandoffOptions(), tracker([user("a person please", "human_handoff")]))
    assert [b["title"] for b in dispatcher.messages[0]["buttons"]] == ["Financial Assistant", title]
