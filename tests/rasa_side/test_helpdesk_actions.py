"""The Helpdesk Assistant's form validators, actions and incident store, run with rasa-sdk's own classes."""
import asyncio
import importlib
import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import sqlalchemy
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff import sqlstore
from tests.rasa_side.bots import BOTS, load_actions, load_domain

BOT = BOTS / "helpdesk"
DOMAIN = load_domain("helpdesk")
ACTIONS = load_actions("helpdesk")
incident = importlib.import_module(f"{ACTIONS}.incident")
incidents_db = importlib.import_module(f"{ACTIONS}.incidents_db")


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
        ("not urgent", "low"),
        ("it's not very urgent", "low"),
        ("this isn't urgent at all", "low"),
        ("no rush", "low"),
        ("it can wait", "low"),
        ("whenever you like", "low"),
        ("not a priority", "low"),
        ("non-urgent", "low"),
        ("very urgent", "high"),
        ("the sky is blue", None),
        ("", None),
    ],
)
def test_priority_answers_map_to_three_levels(answer: str, priority: Optional[str]):
    dispatcher = CollectingDispatcher()
    result = incident.ValidateOpenIncidentForm().validate_priority(answer, dispatcher, tracker(), DOMAIN)
    assert result == {"priority": priority}
    assert responses(dispatcher) == ([] if priority else ["utter_no_priority"])


def test_not_urgent_is_low_even_when_the_entity_read_urgent_as_high():
    # NLU may tag "urgent" in "not urgent" and map it to high; the words typed decide.
    state = tracker(text="it's not urgent really")
    validator = incident.ValidateOpenIncidentForm()
    assert validator.validate_priority("high", CollectingDispatcher(), state, DOMAIN) == {"priority": "low"}


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


def opened(title: str, conversation: str, email: str = "ana@example.com", priority: str = "low") -> Any:
    """Store an incident with a throwaway description and return it."""
    return incidents_db.create_incident(
        email=email, priority=priority, title=title, description="d", conversation_id=conversation
    )


def test_store_creates_the_database_in_the_state_dir_on_first_use(state_dir: Path):
    assert incidents_db.list_incidents("nobody@example.com", "person-1") == []
    assert (state_dir / "helpdesk-incidents.sqlite").is_file()


def test_store_numbers_incidents_and_lists_them_per_email_and_conversation_newest_first():
    first = opened("Slow wifi", "person-1", email="Ana@Example.com")
    opened("No VPN", "person-1", email="bo@example.com", priority="high")
    third = opened("Password reset", "person-1", priority="high")
    opened("Elsewhere", "person-2")

    assert (first.number, third.number) == ("INC0000001", "INC0000003")
    listed = incidents_db.list_incidents("ANA@example.com", "person-1")
    assert [i.number for i in listed] == ["INC0000003", "INC0000001"]
    assert listed[1] == first
    assert first.state == "new" and first.email == "ana@example.com"
    assert [i.title for i in incidents_db.list_incidents("ana@example.com", "person-2")] == ["Elsewhere"]


def test_an_incident_is_found_by_number_only_with_its_own_email():
    incident = opened("Slow wifi", "person-1")
    assert incidents_db.find_incident(incident.number, "ANA@example.com") == incident
    assert incidents_db.find_incident(incident.number, "bo@example.com") is None
    assert incidents_db.find_incident("INC0009999", "ana@example.com") is None


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("status of INC0000042 please", ["INC0000042"]),
        ("inc 42 and INC-0000007", ["INC0000042", "INC0000007"]),
        ("INC0000042, again INC0000042", ["INC0000042"]),
        ("my ticket from Monday", []),
    ],
)
def test_incident_numbers_are_read_from_what_the_person_typed(text: str, numbers: List[str]):
    assert incidents_db.find_numbers(text) == numbers


def test_store_keeps_incidents_across_connections(state_dir: Path):
    opened("t", "c", priority="medium")
    with sqlite3.connect(str(state_dir / "helpdesk-incidents.sqlite")) as connection:
        rows = connection.execute(
            "SELECT number, email, priority, title, description, state, conversation_id"
            " FROM helpdesk_incidents"
        )
        assert rows.fetchall() == [("INC0000001", "ana@example.com", "medium", "t", "d", "new", "c")]


def test_a_database_of_the_first_schema_is_upgraded_and_keeps_its_incidents(state_dir: Path):
    # Build the database as version 1 of the schema left it.
    engine = sqlstore._new_engine(sqlstore.database_url(incidents_db.DB_NAME))
    sqlstore.migrate(engine, incidents_db.PREFIX, incidents_db.MIGRATIONS[:1])
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(
            "INSERT INTO helpdesk_incidents (number, email, priority, title, description, state, created_at)"
            " VALUES ('INC0000001', 'ana@example.com', 'low', 'Old one', 'd', 'new',"
            " '2024-05-01T10:00:00+00:00')"
        ))
    engine.dispose()

    assert incidents_db.find_incident("INC0000001", "ana@example.com").title == "Old one"
    with incidents_db.engine().connect() as connection:
        assert sqlstore.schema_version(connection, incidents_db.PREFIX) == len(incidents_db.MIGRATIONS) == 2
    assert opened("New one", "person-1").number == "INC0000002"


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

    [stored] = incidents_db.list_incidents("ana@example.com", "person-1")
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
    assert incidents_db.list_incidents("ana@example.com", "person-1") == []
    assert SlotSet("email", None) in events


def status_request(text: str) -> List[Dict[str, Any]]:
    """Return the events of a status request typed as ``text``, then an email typed in answer."""
    return [
        {"event": "user", "text": text, "parse_data": {"intent": {"name": "incident_status"}}},
        {"event": "user", "text": "ana@example.com", "parse_data": {"intent": {"name": "inform"}}},
    ]


def summaries(dispatcher: CollectingDispatcher) -> List[Tuple[str, str]]:
    shown = [m for m in dispatcher.messages if m["response"] == "utter_incident_summary"]
    return [(m["number"], m["title"]) for m in shown]


def test_status_lists_the_incidents_this_conversation_opened_for_the_email():
    opened("Slow wifi", "person-1")
    opened("Not mine", "person-1", email="bo@example.com")

    state = tracker({"email": "ana@example.com"}, events=status_request("any news on my ticket?"))
    dispatcher, events = run(incident.ActionCheckIncidentStatus(), state)

    assert responses(dispatcher) == ["utter_incidents_found", "utter_incident_summary"]
    summary = dispatcher.messages[1]
    assert (summary["number"], summary["title"], summary["state"]) == ("INC0000001", "Slow wifi", "new")
    assert events == [SlotSet("email", None), SlotSet("previous_email", "ana@example.com")]


def test_status_never_lists_another_conversations_incidents_for_a_typed_email():
    opened("Private title", "ana")

    slots = {**tracker().slots, "email": "ana@example.com"}
    state = Tracker("someone-else", slots, {}, [], False, None, {}, "")
    dispatcher, _ = run(incident.ActionCheckIncidentStatus(), state)

    assert responses(dispatcher) == ["utter_no_incidents"]
    assert "Private title" not in str(dispatcher.messages)


def test_status_shows_an_incident_from_elsewhere_when_its_number_and_email_are_given():
    earlier = opened("Slow wifi", "earlier")

    state = tracker({"email": "ana@example.com"}, events=status_request(f"status of {earlier.number}?"))
    dispatcher, _ = run(incident.ActionCheckIncidentStatus(), state)

    assert responses(dispatcher) == ["utter_incidents_found", "utter_incident_summary"]
    assert summaries(dispatcher) == [(earlier.number, "Slow wifi")]


def test_status_with_a_number_under_another_email_shows_nothing_of_it():
    bos = opened("Bo's laptop", "bo", email="bo@example.com")

    state = tracker({"email": "ana@example.com"}, events=status_request(f"what about {bos.number}"))
    dispatcher, _ = run(incident.ActionCheckIncidentStatus(), state)

    assert responses(dispatcher) == ["utter_incident_not_found", "utter_no_incidents"]
    assert dispatcher.messages[0]["number"] == bos.number
    assert "Bo's laptop" not in str(dispatcher.messages)


def test_status_without_incidents_says_so():
    dispatcher, _ = run(incident.ActionCheckIncidentStatus(), tracker({"email": "new@example.com"}))
    assert responses(dispatcher) == ["utter_no_incidents"]


# --- the domain and the code agree ------------------------------------------------------------


def test_every_response_the_actions_send_is_in_the_domain():
    used = {
        "utter_no_email", "utter_no_priority", "utter_ask_email", "utter_ask_use_previous_email",
        "utter_incident_created", "utter_incident_creation_canceled", "utter_incidents_found",
        "utter_incident_summary", "utter_no_incidents", "utter_incident_not_found",
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
