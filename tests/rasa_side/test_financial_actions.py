"""The Financial Assistant's actions and profile store, run with rasa-sdk's own classes."""
import asyncio
import datetime
import importlib
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff import sqlstore
from tests.rasa_side.bots import load_actions, load_domain

DOMAIN = load_domain("financial")
ACTIONS = load_actions("financial")
common = importlib.import_module(f"{ACTIONS}.common")
payment = importlib.import_module(f"{ACTIONS}.payment")
profiles = importlib.import_module(f"{ACTIONS}.profiles")
switching = importlib.import_module(f"{ACTIONS}.switching")
transfer = importlib.import_module(f"{ACTIONS}.transfer")

CC, TRANSFER, SEARCH = "cc_payment_form", "transfer_money_form", "transaction_search_form"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path))
    return tmp_path


def user(text: str, intent: str, entities: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    parse = {"intent": {"name": intent}, "entities": entities or []}
    return {"event": "user", "text": text, "parse_data": parse}


def action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name}


def tracker(
    slots: Optional[Dict[str, Any]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    sender: str = "person-1",
) -> Tracker:
    events = events or []
    latest_user = next((e for e in reversed(events) if e["event"] == "user"), None)
    latest = dict(latest_user["parse_data"], text=latest_user["text"]) if latest_user else {}
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots.update(slots or {})
    loop = {"name": active_loop} if active_loop else {}
    return Tracker(sender, all_slots, latest, events, False, None, loop, "action_listen")


def run(action_: Any, tracker_: Tracker) -> Tuple[CollectingDispatcher, List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action_.run(dispatcher, tracker_, DOMAIN))
    return dispatcher, events


def responses(dispatcher: CollectingDispatcher) -> List[Optional[str]]:
    return [message["response"] for message in dispatcher.messages]


def slots_after(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}


# --- switching tasks --------------------------------------------------------------------------


def test_asking_to_switch_names_the_next_form_and_leaves_nothing_pending():
    state = tracker({"requested_slot": "PERSON"}, [user("pay my card", "pay_cc")], active_loop=TRANSFER)
    dispatcher, events = run(switching.ActionSwitchFormsAsk(), state)
    assert responses(dispatcher) == ["utter_switch_to_cc_payment_form"]
    assert events == [SlotSet("next_form_name", CC), SlotSet("requested_slot", None)]


def test_asking_to_switch_without_a_form_running_names_the_rule_to_check():
    with pytest.raises(ValueError, match="data/rules/switching.yml"):
        run(switching.ActionSwitchFormsAsk(), tracker(events=[user("pay my card", "pay_cc")]))


def test_declining_the_switch_clears_only_the_next_form():
    state = tracker({"next_form_name": CC}, [user("no", "deny")], active_loop=TRANSFER)
    dispatcher, events = run(switching.ActionSwitchFormsDeny(), state)
    assert responses(dispatcher) == ["utter_switch_forms_deny"]
    assert events == [SlotSet("next_form_name", None)]


def switch_events(request: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [request, action(common.ASK), action("action_listen"), user("yes", "affirm")]


def test_agreeing_to_switch_keeps_the_current_answers_and_starts_the_new_task_from_its_request():
    request = user("pay 50 on emblem", "pay_cc", [
        {"entity": "amount-of-money", "value": "50"}, {"entity": "credit_card", "value": "emblem"},
    ])
    state = tracker(
        {"next_form_name": CC, "PERSON": "Maria Lopez", "amount-of-money": "$20.00",
         "AA_CONTINUE_FORM": True},
        switch_events(request), active_loop=TRANSFER,
    )
    _, events = run(switching.ActionSwitchFormsAffirm(), state)
    slots = slots_after(events)

    assert (slots["next_form_name"], slots["previous_form_name"]) == (None, TRANSFER)
    [waiting] = slots["form_stash"]["waiting"]
    assert waiting["form"] == TRANSFER
    assert waiting["slots"]["PERSON"] == "Maria Lopez" and waiting["slots"]["amount-of-money"] == "$20.00"
    # The request's own entities fill the new form, and it needs no "carry on?".
    assert (slots["credit_card"], slots["amount-of-money"]) == ("emblem", "50")
    assert slots["AA_CONTINUE_FORM"] is True


def test_earnings_asked_for_mid_form_start_a_search_of_deposits():
    state = tracker({"next_form_name": SEARCH}, switch_events(user("what did I earn", "check_earnings")),
                    active_loop=CC)
    _, events = run(switching.ActionSwitchFormsAffirm(), state)
    assert slots_after(events)["search_type"] == "deposit"


def test_a_chain_the_person_walked_away_from_is_dropped_at_the_next_switch():
    stale = {"waiting": [{"form": SEARCH, "slots": {}}], "offered": {"form": CC, "slots": {}}}
    state = tracker({"next_form_name": CC, "form_stash": stale}, switch_events(user("pay", "pay_cc")),
                    active_loop=TRANSFER)
    _, events = run(switching.ActionSwitchFormsAffirm(), state)
    assert [task["form"] for task in slots_after(events)["form_stash"]["waiting"]] == [TRANSFER]


def resume(form: str, stash: Dict[str, Any], answer: str = "affirm") -> List[Dict[str, Any]]:
    """Return the events of running ``form``'s validator right after the back offer was answered."""
    events = [action(common.BACK_ASK), action("action_listen"), user("yes", answer)]
    state = tracker({"form_stash": stash}, events, active_loop=form)
    validator = {CC: payment.ValidateCcPaymentForm, TRANSFER: transfer.ValidateTransferMoneyForm}[form]
    _, result = run(validator(), state)
    return result


def test_three_tasks_deep_come_back_in_order():
    card = {"form": CC, "slots": {"credit_card": "iron bank", "amount-of-money": "$30.00"}}
    transfer = {"form": TRANSFER, "slots": {"PERSON": "Tom Becker"}}
    stash = {"waiting": [card, transfer], "offered": None}
    state = tracker({"previous_form_name": TRANSFER, "form_stash": stash}, [user("yes", "affirm")])

    # The search is done: the transfer, left last, is offered first.
    dispatcher, events = run(switching.ActionSwitchBackAsk(), state)
    assert responses(dispatcher) == ["utter_ask_transfer_money_form_AA_CONTINUE_FORM"]
    stash = slots_after(events)["form_stash"]
    assert slots_after(events)["previous_form_name"] is None
    assert (stash["offered"]["form"], [t["form"] for t in stash["waiting"]]) == (TRANSFER, [CC])

    # Yes: the transfer comes back with its answers, and the card payment waits next.
    restored = slots_after(resume(TRANSFER, stash))
    assert restored["PERSON"] == "Tom Becker" and restored["AA_CONTINUE_FORM"] is True
    assert restored["previous_form_name"] == CC
    assert restored["form_stash"] == {"waiting": [card], "offered": None}

    # The transfer is done: now the card payment is offered, then restored.
    _, events = run(switching.ActionSwitchBackAsk(), tracker({"previous_form_name": CC,
                                                              "form_stash": restored["form_stash"]}))
    stash = slots_after(events)["form_stash"]
    restored = slots_after(resume(CC, stash))
    assert (restored["credit_card"], restored["amount-of-money"]) == ("iron bank", "$30.00")
    assert restored["previous_form_name"] is None
    assert restored["form_stash"] == {"waiting": [], "offered": None}


def test_a_form_started_afresh_does_not_take_the_answers_on_offer():
    stash = {"waiting": [], "offered": {"form": TRANSFER, "slots": {"PERSON": "Tom Becker"}}}
    assert "PERSON" not in slots_after(resume(TRANSFER, stash, answer="transfer_money"))


def test_finishing_a_task_empties_its_form_but_keeps_the_waiting_task():
    events = common.finish_form(tracker({"previous_form_name": CC}), DOMAIN, TRANSFER)
    cleared = slots_after(events)
    assert set(cleared) == {
        "PERSON", "amount-of-money", "time_formatted", "AA_CONTINUE_FORM", "zz_confirm_form",
    }
    assert set(cleared.values()) == {None}


# --- paying a card: now or later --------------------------------------------------------------


def card_payment(day: datetime.date, amount: str = "$40.00") -> Tracker:
    return tracker({
        "credit_card": "emblem", "amount-of-money": amount, "time": day.isoformat(), "zz_confirm_form": True,
    })


def test_a_payment_due_today_changes_both_balances_at_once():
    today = datetime.date.today()
    with profiles.connect() as db:
        before = {a.name: a.balance for a in profiles.list_accounts(db, "person-1")}

    dispatcher, _ = run(payment.ActionPayCc(), card_payment(today))

    assert responses(dispatcher) == ["utter_cc_payment_complete"]
    with profiles.connect() as db:
        after = {a.name: a.balance for a in profiles.list_accounts(db, "person-1")}
    assert (after["emblem"], after["bank"]) == (before["emblem"] - 40, before["bank"] - 40)


def test_a_payment_dated_later_is_scheduled_and_moves_no_money_until_its_day():
    today = datetime.date.today()
    later = today + datetime.timedelta(days=3)
    with profiles.connect() as db:
        before = {a.name: a.balance for a in profiles.list_accounts(db, "person-1")}

    dispatcher, _ = run(payment.ActionPayCc(), card_payment(later))

    assert responses(dispatcher) == ["utter_cc_payment_scheduled"]
    assert dispatcher.messages[0]["day"] == payment.describe_date(later)
    with profiles.connect() as db:
        assert {a.name: a.balance for a in profiles.list_accounts(db, "person-1")} == before
        assert profiles.list_scheduled_payments(db, "person-1") == [
            profiles.ScheduledPayment("emblem", Decimal("40.00"), later)
        ]
        # On its day the payment goes through, once.
        profiles.ensure_profile(db, "person-1", later)
        profiles.ensure_profile(db, "person-1", later)
        after = {a.name: a.balance for a in profiles.list_accounts(db, "person-1")}
        assert profiles.list_scheduled_payments(db, "person-1") == []
    assert (after["emblem"], after["bank"]) == (before["emblem"] - 40, before["bank"] - 40)


def test_a_scheduled_payment_the_bank_cannot_cover_on_its_day_moves_nothing():
    later = datetime.date.today() + datetime.timedelta(days=1)
    with profiles.connect() as db:
        bank = profiles.get_account(db, "person-1", profiles.BANK).balance
        profiles.schedule_card_payment(db, "person-1", "emblem", Decimal("20"), later)
        profiles.transfer(db, "person-1", "Maria Lopez", bank - 10, datetime.date.today())
        profiles.ensure_profile(db, "person-1", later)
        assert profiles.get_account(db, "person-1", profiles.BANK).balance == Decimal("10.00")
        assert profiles.list_scheduled_payments(db, "person-1") == []


def test_a_cancelled_payment_moves_nothing():
    state = tracker({"credit_card": "emblem", "amount-of-money": "$40.00", "time": "2024-05-17",
                     "zz_confirm_form": False})
    dispatcher, events = run(payment.ActionPayCc(), state)
    assert responses(dispatcher) == ["utter_cc_payment_canceled"]
    assert SlotSet("credit_card", None) in events


@pytest.mark.parametrize("answer", ["tomorrow", "next friday", "in two weeks"])
def test_a_future_payment_date_is_accepted(answer: str):
    result = payment.ValidateCcPaymentForm().validate_time(answer, CollectingDispatcher(), tracker(), DOMAIN)
    assert datetime.date.fromisoformat(result["time"]) > datetime.date.today()


# --- the profile store ------------------------------------------------------------------------


def test_profiles_live_in_versioned_tables_of_the_state_dirs_sqlite_file(state_dir: Path):
    with profiles.connect() as db:
        profiles.ensure_profile(db, "person-1")
        assert sqlstore.schema_version(db, profiles.PREFIX) == len(profiles.MIGRATIONS)
    assert (state_dir / "financial-profiles.sqlite").is_file()


def test_two_conversations_get_their_own_profiles_and_keep_them():
    with profiles.connect() as db:
        first = profiles.list_accounts(db, "person-1")
        second = profiles.list_accounts(db, "person-2")
        assert profiles.list_accounts(db, "person-1") == first
    assert first != second
    assert [a.name for a in first] == ["bank", "emblem", "justice bank", "credit all", "iron bank"]


def test_a_newer_schema_than_the_code_knows_is_refused_with_the_fix(state_dir: Path):
    engine = profiles.engine()
    future = sqlstore.Migration(len(profiles.MIGRATIONS) + 1, "from the future", lambda connection: None)
    sqlstore.migrate(engine, profiles.PREFIX, list(profiles.MIGRATIONS) + [future])
    with pytest.raises(RuntimeError, match="newer than this code"):
        sqlstore.migrate(engine, profiles.PREFIX, profiles.MIGRATIONS)


def test_migrations_must_be_numbered_in_order():
    steps = [sqlstore.Migration(2, "two", lambda c: None), sqlstore.Migration(1, "one", lambda c: None)]
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        sqlstore.migrate(profiles.engine(), "test", steps)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://bot@127.0.0.1:5432/handoff", "postgresql+psycopg2://bot@127.0.0.1:5432/handoff"),
        ("postgresql+psycopg://bot@127.0.0.1/handoff", "postgresql+psycopg2://bot@127.0.0.1/handoff"),
        ("postgres://bot@db/handoff", "postgresql+psycopg2://bot@db/handoff"),
    ],
)
def test_database_url_speaks_psycopg2_to_postgresql(url: str, expected: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", url)
    assert sqlstore.database_url("x.sqlite") == expected


def test_database_url_defaults_to_a_sqlite_file_in_the_state_dir(state_dir: Path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert sqlstore.database_url("x.sqlite") == f"sqlite:///{state_dir / 'x.sqlite'}"


def test_a_database_url_of_another_kind_is_refused_with_the_setting_named(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://bot@db/handoff")
    with pytest.raises(ValueError, match=r"\$DATABASE_URL='mysql://bot@db/handoff'"):
        sqlstore.database_url("x.sqlite")


# --- the domain and the code agree ------------------------------------------------------------


def test_every_response_the_switching_and_payment_actions_send_is_in_the_domain():
    used = {"utter_cc_payment_scheduled", "utter_cc_payment_complete", "utter_cc_payment_canceled",
            "utter_switch_forms_affirm", "utter_switch_forms_deny"}
    used |= {f"utter_switch_to_{form}" for form in (CC, TRANSFER, SEARCH)}
    used |= {f"utter_ask_{form}_AA_CONTINUE_FORM" for form in (CC, TRANSFER, SEARCH)}
    assert used <= set(DOMAIN["responses"])
