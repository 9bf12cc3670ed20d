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
REQUESTED_SLOT = "requested_slot"
ASK = "action_switch_forms_ask"
BACK_ASK = "action_switch_back_ask"
# Steps of the bot that are not a reply to anything the person said.
SILENT_ACTIONS = {"action_listen", "action_extract_slots", "action_session_start"}

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


def kept_slots(domain: DomainDict, form: Text) -> List[Text]:
    """Return the slots holding ``form``'s answers: kept while it waits, emptied when it ends.

    The "carry on?" and "confirm?" answers are not kept: a task that comes back
    was just chosen again, and its confirmation is always asked afresh.
    """
    slots = [slot for slot in form_slots(domain, form) if slot not in (CONTINUE_SLOT, CONFIRM_SLOT)]
    slots.append(TIME_FORMATTED)
    if form == SEARCH_FORM:
        # Optional: never asked, only taken from the request.
        slots.append("vendor_name")
    return slots


def latest_intent(tracker: Tracker) -> Optional[Text]:
    """Return the intent of the person's latest message, button payloads included."""
    return (tracker.latest_message.get("intent") or {}).get("name")


def latest_bot_action(tracker: Tracker) -> Optional[Text]:
    """Return the last thing the bot did before the person's latest message (a form, an utterance...)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "action" and event.get("name") not in SILENT_ACTIONS:
            return event.get("name")
    return None


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

    ``previous_form_name`` stays: the rules read it right after the task's
    action to offer going back to a task left waiting.
    """
    return [SlotSet(slot, None) for slot in kept_slots(domain, form) + [CONTINUE_SLOT, CONFIRM_SLOT]]


def read_stash(tracker: Tracker) -> Dict[Text, Any]:
    """Return the stash as ``{"waiting": [task, ...], "offered": task or None}``; a task is {form, slots}."""
    stash = tracker.get_slot(STASH)
    if not isinstance(stash, dict):
        return {"waiting": [], "offered": None}
    waiting = [task for task in stash.get("waiting") or [] if isinstance(task, dict) and task.get("form")]
    offered = stash.get("offered") if isinstance(stash.get("offered"), dict) else None
    return {"waiting": waiting, "offered": offered}


def resume_events(tracker: Tracker, domain: DomainDict, form: Text) -> List[EventType]:
    """Return the events that bring back ``form``'s answers if the person just agreed to go back to it.

    Called by the form's validation action: the form runs because the person said
    yes to ``action_switch_back_ask``, so its answers come back and it asks its
    next open question; a task still waiting below becomes the next one offered.
    """
    stash = read_stash(tracker)
    offered = stash["offered"]
    if (
        offered is None
        or offered.get("form") != form
        or latest_bot_action(tracker) != BACK_ASK
        or latest_intent(tracker) != "affirm"
    ):
        return []
    events: List[EventType] = [SlotSet(slot, value) for slot, value in (offered.get("slots") or {}).items()]
    waiting = stash["waiting"]
    events += [
        SlotSet(CONTINUE_SLOT, True),
        SlotSet(PREVIOUS_FORM, waiting[-1]["form"] if waiting else None),
        SlotSet(STASH, {"waiting": waiting, "offered": None}),
    ]
    return events


class TaskFormValidation(FormValidationAction, ABC):
    """Validation shared by the three task forms: resuming after a switch, and a "no" to it."""

    @abstractmethod
    def name(self) -> Text:
        """Return ``validate_<form name>``."""

    def form_name(self) -> Text:
        return self.name()[len("validate_"):]

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        restored = resume_events(tracker, domain, self.form_name())
        # Into the slots but not the events: these answers were validated when given.
        tracker.slots.update({event["name"]: event["value"] for event in restored})
        return restored + await super().run(dispatcher, tracker, domain)

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
