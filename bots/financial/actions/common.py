"""What the financial actions share: the forms' names, the profile database, form clean-up."""
import datetime
import difflib
import re
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Sequence, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

CONTINUE_SLOT = "AA_CONTINUE_FORM"
CONFIRM_SLOT = "zz_confirm_form"
NEXT_FORM = "next_form_name"
PREVIOUS_FORM = "previous_form_name"
STASH = "form_stash"
TIME_FORMATTED = "time_formatted"

CC_FORM = "cc_payment_form"
TRANSFER_FORM = "transfer_money_form"
SEARCH_FORM = "transaction_search_form"
# The intent that starts each task, for deciding which form a person switches to.
FORM_FOR_INTENT = {
    "pay_cc": CC_FORM,
    "transfer_money": TRANSFER_FORM,
    "search_transactions": SEARCH_FORM,
    "check_earnings": SEARCH_FORM,
}


def today() -> datetime.date:
    """Return the day the bot reasons from (one place, so tests could pin it)."""
    return datetime.date.today()


def form_slots(domain: DomainDict, form: Text) -> List[Text]:
    """Return the required slots of ``form`` as the domain declares them."""
    return list(domain.get("forms", {}).get(form, {}).get("required_slots", []))


def best_match(text: Text, choices: Dict[Text, Text], cutoff: float = 0.75) -> Optional[Text]:
    """Return the value whose key ``text`` names, tolerating typos ("emblm"), or None.

    ``choices`` maps every accepted spelling (lower case) to the value it stands for.
    """
    cleaned = re.sub(r"[^a-z0-9 ]", " ", (text or "").lower())
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if not cleaned:
        return None
    if cleaned in choices:
        return choices[cleaned]
    # A known name inside a longer answer ("my emblem card please").
    for key in sorted(choices, key=len, reverse=True):
        if re.search(r"\b{}\b".format(re.escape(key)), cleaned):
            return choices[key]
    close = difflib.get_close_matches(cleaned, list(choices), n=1, cutoff=cutoff)
    if close:
        return choices[close[0]]
    # Typos inside a longer answer: compare word spans of the key's length.
    words = cleaned.split()
    for key in sorted(choices, key=len, reverse=True):
        size = len(key.split())
        spans = [" ".join(words[i:i + size]) for i in range(len(words) - size + 1)]
        if difflib.get_close_matches(key, spans, n=1, cutoff=0.8):
            return choices[key]
    return None


def finish_form(tracker: Tracker, domain: DomainDict, form: Text) -> List[EventType]:
    """Return the events that empty ``form`` after its task is done or cancelled.

    The switch slots are cleared only when they point at this form: if the
    person switched here from another task, that task stays pending.
    """
    events: List[EventType] = [SlotSet(slot, None) for slot in form_slots(domain, form)]
    events.append(SlotSet(TIME_FORMATTED, None))
    for slot in (NEXT_FORM, PREVIOUS_FORM):
        if tracker.get_slot(slot) == form:
            events.append(SlotSet(slot, None))
    return events


class TaskFormValidation(FormValidationAction, ABC):
    """Validation shared by the three task forms: a "no" to resuming ends the form."""

    @abstractmethod
    def name(self) -> Text:
        """Return ``validate_<form name>``."""

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        # Nothing left to ask once the person declines to go back to this task;
        # the form then ends and its action reports the task as cancelled.
        if tracker.get_slot(CONTINUE_SLOT) is False:
            return []
        return domain_slots

    def validate_AA_CONTINUE_FORM(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        return {CONTINUE_SLOT: slot_value if isinstance(slot_value, bool) else None}

    def validate_zz_confirm_form(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        return {CONFIRM_SLOT: slot_value if isinstance(slot_value, bool) else None}


def join_names(names: Sequence[Text]) -> Text:
    """Return "a, b and c" for a list a person reads."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return "{} and {}".format(", ".join(names[:-1]), names[-1])
