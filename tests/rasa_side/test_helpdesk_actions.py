"""The Helpdesk Assistant's form validators, actions and incident store, run with rasa-sdk's own classes."""
import asyncio
import importlib
import importlib.util
import sqlite3
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

BOT = Path(__file__).resolve().parents[2] / "bots" / "helpdesk"
DOMAIN: Dict[str, Any] = yaml.safe_load((BOT / "domain.yml").read_text())


def load_actions_package(name: str) -> Any:
    """Import bots/helpdesk/actions as ``name``: every bot has a package called ``actions``."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, BOT / "actions" / "__init__.py", submodule_search_locations=[str(BOT / "actions")]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return sys.modules[name]


load_actions_package("helpdesk_actions")
incident = importlib.import_module("helpdesk_actions.incident")
incidents_db = importlib.import_module("helpdesk_actions.incidents_db")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path))
    return tmp_path


def tracker(
    slots: Optional[Dict[str, Any]] = None,
    intent: str = "inform",
    text: str = "",
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
) -> Tracker:
    latest = {"intent": {"name": intent, "confidence": 1.0}, "entities": [], "text": text}
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots.update(slots or {})
    loop = {"name": active_loop} if active_loop else {}
    return Tracker("person-1", all_slots, latest, events or [], False, None, loop, "action_listen")


def run(action: Any, tracker_: Tracker) -> Tuple[CollectingDispatcher, List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker_, DOMAIN))
    return dispatcher, events


def responses(dispatcher: CollectingDispatcher) -> List[Optional[str]]:
    return [message["response"] for message in dispatcher.messages]


# --- validators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, email",
    [
        ("maria.lopez@example.org", "maria.lopez@example.org"),
        ("my email is Kim.Berg@Example.COM.", "kim.berg@example.com"),
        ("reach me at pat_o-neil+it@mail.co.uk please", "pat_o-neil+it@mail.co.uk"),
        ("(tom@example.net)", "tom@example.net"),
        ("maria at example dot org", None),
        ("maria@example", None),
        ("@example.org", None),
        ("", None),
    ],
)
def test_email_answers_are_cleaned_or_asked_again(answer: str, email: Optional[str]):
    dispatcher = CollectingDispatcher()
    validator = incident.ValidateOpenIncidentForm()
    result = validator.validate_email(answer, dispatcher, tracker(text=answer), DOMAIN)
    assert result == {"email": email, "caller_id": email}
    assert responses(dispatcher) == ([] if email else ["utter_no_email"])


@pytest.mark.parametrize(
    "intent, answer, expected",
    [
        ("affirm", "yes", {"email": "ana@example.com", "caller_id": "ana@example.com"}),
        ("affirm", "/affirm", {"email": "ana@example.com", "caller_id": "ana@example.com"}),
        # No forgets the previous email, so action_ask_email asks plainly next.
        ("deny", "no", {"email": None, "previous_email": None}),
        ("inform", "new.me@example.com", {"email": "new.me@example.com", "caller_id": "new.me@example.com"}),
    ],
)
def test_answer_to_the_reuse_offer_decides_the_email(intent: str, answer: str, expected: Dict[str, Any]):
    dispatcher = CollectingDispatcher()
    state = tracker({"previous_email": "ana@example.com"}, intent=intent, text=answer)
    result = incident.ValidateIncidentStatusForm().validate_email(answer, dispatcher, state, DOMAIN)
    assert result == expected
    assert dispatcher.messages == []


def test_yes_without_a_previous_email_is_not_an_email():
    dispatcher = CollectingDispatcher()
    validator = incident.ValidateIncidentStatusForm()
    result = validator.validate_email("yes", dispatcher, tracker(intent="affirm"), DOMAIN)
    assert result["email"] is None
    assert responses(dispatcher) == ["utter_no_email"]


@pytest.mark.parametrize(
    "answer, priority",
    [
        ("low", "low"),
        ("High", "high"),
        ("it's urgent!", "high"),
        ("critical", "high"),
        ("normal", "medium"),
        ("moderate", "medium"),
        ("minor issue", "low"),
        ('/inform{"priority":"medium"}', "medium"),
        ("whenever you like", None),
        ("", None),
    ],
)
def test_priority_answers_map_to_three_levels(answer: str, priority: Optional[str]):
    dispatcher = CollectingDispatcher()
    result = incident.ValidateOpenIncidentForm().validate_priority(answer, dispatcher, tracker(), DOMAIN)
    assert result == {"priority": priority}
    assert responses(dispatcher) == ([] if priority else ["utter_no_priority"])


@pytest.mark.parametrize("slot", ["problem_description", "incident_title"])
@pytest.mark.parametrize("answer, value", [("  VPN drops  ", "VPN drops"), ("   ", None)])
def test_free_text_answers_are_stripped_and_blank_ones_refused(slot: str, answer: str, value: Optional[str]):
    validator = getattr(incident.ValidateOpenIncidentForm(), f"validate_{slot}")
    assert validator(answer, CollectingDispatcher(), tracker(), DOMAIN) == {slot: value}


def test_form_validator_run_sets_email_and_caller_from_the_extracted_slot():
    events = [
        {"event": "user", "text": "sam@example.com", "parse_data": {"intent": {"name": "inform"}}},
        {"event": "slot", "name": "email", "value": "Sam@Example.com"},
    ]
    state = tracker({"email": "Sam@Example.com", "requested_slot": "email"}, text="Sam@Example.com",
                    events=events, active_loop="open_incident_form")
    _, result = run(incident.ValidateOpenIncidentForm(), state)
    assert SlotSet("email", "sam@example.com") in result
    assert SlotSet("caller_id", "sam@example.com") in result


# --- asking for the email ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "previous, response",
    [(None, "utter_ask_email"), ("ana@example.com", "utter_ask_use_previous_email")],
)
def test_email_question_offers_the_previous_email_when_there_is_one(previous: Optional[str], response: str):
    dispatcher, events = run(incident.ActionAskEmail(), tracker({"previous_email": previous}))
    assert responses(dispatcher) == [response]
    assert events == []


# --- incident store ---------------------------------------------------------------------------


def test_store_creates_the_database_in_the_state_dir_on_first_use(state_dir: Path):
    assert incidents_db.list_incidents("nobody@example.com") == []
    assert (state_dir / "helpdesk-incidents.sqlite").is_file()


def test_store_numbers_incidents_and_lists_them_per_email_newest_first():
    first = incidents_db.create_incident(
        email="Ana@Example.com", priority="low", title="Slow wifi", description="wifi slow at noon"
    )
    incidents_db.create_incident(
        email="bo@example.com", priority="high", title="No VPN", description="VPN down"
    )
    third = incidents_db.create_incident(
        email="ana@example.com", priority="high", title="Password reset", description="locked out"
    )

    assert (first.number, third.number) == ("INC0000001", "INC0000003")
    listed = incidents_db.list_incidents("ANA@example.com")
    assert [i.number for i in listed] == ["INC0000003", "INC0000001"]
    assert listed[1] == first
    assert first.state == "new" and first.email == "ana@example.com"


def test_store_keeps_incidents_across_connections(state_dir: Path):
    incidents_db.create_incident(email="ana@example.com", priority="medium", title="t", description="d")
    with sqlite3.connect(str(state_dir / "helpdesk-incidents.sqlite")) as connection:
        rows = connection.execute("SELECT number, email, priority, title, description, state FROM incidents")
        assert rows.fetchall() == [("INC0000001", "ana@example.com", "medium", "t", "d", "new")]


# --- actions ----------------------------------------------------------------------------------

FILLED_FORM = {
    "email": "ana@example.com",
    "priority": "high",
    "problem_description": "the login page says my password expired",
    "incident_title": "Password reset",
    "confirm": True,
}


def test_open_incident_stores_it_tells_its_number_and_keeps_the_email_for_later():
    dispatcher, events = run(incident.ActionOpenIncident(), tracker(FILLED_FORM))

    [stored] = incidents_db.list_incidents("ana@example.com")
    assert (stored.title, stored.priority, stored.description) == (
        "Password reset", "high", "the login page says my password expired"
    )
    assert responses(dispatcher) == ["utter_incident_created"]
    assert dispatcher.messages[0]["incident_number"] == stored.number
    assert [SlotSet(slot, None) for slot in FILLED_FORM] == events[:-1]
    assert events[-1] == SlotSet("previous_email", "ana@example.com")


def test_cancelled_incident_is_not_stored():
    dispatcher, events = run(incident.ActionOpenIncident(), tracker({**FILLED_FORM, "confirm": False}))
    assert responses(dispatcher) == ["utter_incident_creation_canceled"]
    assert incidents_db.list_incidents("ana@example.com") == []
    assert SlotSet("email", None) in events


def test_status_lists_the_emails_incidents():
    incidents_db.create_incident(email="ana@example.com", priority="low", title="Slow wifi", description="d")
    incidents_db.create_incident(email="bo@example.com", priority="low", title="Not mine", description="d")

    dispatcher, events = run(incident.ActionCheckIncidentStatus(), tracker({"email": "ana@example.com"}))

    assert responses(dispatcher) == ["utter_incidents_found", "utter_incident_summary"]
    summary = dispatcher.messages[1]
    assert (summary["number"], summary["title"], summary["state"]) == ("INC0000001", "Slow wifi", "new")
    assert events == [SlotSet("email", None), SlotSet("previous_email", "ana@example.com")]


def test_status_without_incidents_says_so():
    dispatcher, _ = run(incident.ActionCheckIncidentStatus(), tracker({"email": "new@example.com"}))
    assert responses(dispatcher) == ["utter_no_incidents"]


# --- the domain and the code agree ------------------------------------------------------------


def test_every_response_the_actions_send_is_in_the_domain():
    used = {
        "utter_no_email", "utter_no_priority", "utter_ask_email", "utter_ask_use_previous_email",
        "utter_incident_created", "utter_incident_creation_canceled", "utter_incidents_found",
        "utter_incident_summary", "utter_no_incidents",
    }
    source = (BOT / "actions" / "incident.py").read_text()
    assert all(f'"{name}"' in source for name in used)
    assert used <= set(DOMAIN["responses"])


def test_every_action_here_is_declared_in_the_domain():
    names = {
        cls().name() for cls in (
            incident.ValidateOpenIncidentForm, incident.ValidateIncidentStatusForm,
            incident.ActionAskEmail, incident.ActionOpenIncident, incident.ActionCheckIncidentStatus,
        )
    }
    assert names <= set(DOMAIN["actions"])
