"""Add up spending or deposits over a period: validate the form's answers and search."""
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import profiles
from .common import (
    CONFIRM_SLOT,
    SEARCH_FORM,
    TIME_FORMATTED,
    TaskFormValidation,
    best_match,
    finish_form,
    today,
)
from .parsing import describe_period, format_amount, parse_period, period_from_slot, period_to_slot

SPEND_WORDS = re.compile(r"\b(spend|spent|spending|purchases?|bought|expenses?|paid|outgoing)\b", re.I)
DEPOSIT_WORDS = re.compile(
    r"\b(deposits?|deposited|income|earn(ed|ings)?|received|came in|incoming|paid in)\b", re.I
)
PARTY_CHOICES = {party: party for party in profiles.VENDORS + profiles.DEPOSIT_SOURCES}
PARTY_CHOICES.update(
    {"my employer": "employer", "work": "employer", "salary": "employer", "paycheck": "employer"}
)


def read_search_type(text: Text) -> Optional[Text]:
    """Return "spend" or "deposit" for an answer like "what I spent", or None."""
    if text in (profiles.SPEND, profiles.DEPOSIT):
        return text
    if DEPOSIT_WORDS.search(text):
        return profiles.DEPOSIT
    if SPEND_WORDS.search(text):
        return profiles.SPEND
    return None


class ValidateTransactionSearchForm(TaskFormValidation):
    """Check each answer of ``transaction_search_form`` and ask again when it is unusable."""

    def name(self) -> Text:
        return "validate_transaction_search_form"

    def validate_search_type(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        kind = read_search_type(str(slot_value or ""))
        if kind is None:
            dispatcher.utter_message(response="utter_no_search_type")
        return {"search_type": kind}

    def validate_time(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        period = parse_period(str(slot_value or ""), today())
        if period is None:
            dispatcher.utter_message(response="utter_no_period")
            return {"time": None, TIME_FORMATTED: None}
        return {"time": period_to_slot(period), TIME_FORMATTED: describe_period(period)}

    def validate_vendor_name(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        party = best_match(str(slot_value or ""), PARTY_CHOICES)
        if party is None and slot_value:
            dispatcher.utter_message(response="utter_unknown_vendor", vendor=slot_value)
        return {"vendor_name": party}

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        # vendor_name is optional: never asked for, but validated when given.
        required = await super().required_slots(domain_slots, dispatcher, tracker, domain)
        return required + ["vendor_name"] if required else required

    async def next_requested_slot(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.get_slot("AA_CONTINUE_FORM") is False:
            return await super().next_requested_slot(dispatcher, tracker, domain)
        # Let Rasa pick the next question from the domain's list, which has no vendor_name.
        return []


class ActionTransactionSearch(Action):
    """Report the total the form's search finds, or nothing if the person said no."""

    def name(self) -> Text:
        return "action_transaction_search"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        period = period_from_slot(tracker.get_slot("time"))
        kind = tracker.get_slot("search_type")
        party = tracker.get_slot("vendor_name")
        if tracker.get_slot(CONFIRM_SLOT) is not True or period is None or kind is None:
            dispatcher.utter_message(response="utter_search_canceled")
            return finish_form(tracker, domain, SEARCH_FORM)
        with profiles.connect() as db:
            total, count = profiles.search_transactions(
                db, tracker.sender_id, kind, period[0], period[1], party
            )
        response = "utter_{}{}_result".format(kind, "_vendor" if party else "")
        dispatcher.utter_message(
            response=response, total=format_amount(total), count=count,
            vendor=(party or "").title(), period=describe_period(period),
        )
        return finish_form(tracker, domain, SEARCH_FORM)

