"""Switch to another task in the middle of a form, and offer to go back afterwards.

The rules read two slots. ``next_form_name`` is the task asked for while a
form runs (set by the question, cleared by the answer); ``previous_form_name``
is the task to offer going back to once the current one is done (set when
the person agrees to switch, cleared when the offer is made).

The forms share slots (amount-of-money, time), so a task left waiting keeps
its answers in ``form_stash``: a stack of waiting tasks, so that switching
three deep comes back through each in turn, and the task on offer.
"""
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .common import (
    ASK,
    BACK_ASK,
    CONFIRM_SLOT,
    CONTINUE_SLOT,
    FORM_FOR_INTENT,
    NEXT_FORM,
    PREVIOUS_FORM,
    REQUESTED_SLOT,
    SEARCH_FORM,
    STASH,
    kept_slots,
    latest_intent,
    read_stash,
)

# Entities in the request that started the switch, and the slot each fills in the new form.
ENTITY_SLOTS = {
    "cc_payment_form": {
        "credit_card": "credit_card", "amount-of-money": "amount-of-money", "number": "amount-of-money",
        "payment_date": "time", "time": "time",
    },
    "transfer_money_form": {
        "PERSON": "PERSON", "amount-of-money": "amount-of-money", "number": "amount-of-money",
    },
    "transaction_search_form": {"search_type": "search_type", "time": "time", "vendor_name": "vendor_name"},
}


def _request_before(tracker: Tracker, action_name: Text) -> Optional[Dict[Text, Any]]:
    """Return the user event that ``action_name`` last answered, or None."""
    seen_action = False
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") == action_name:
            seen_action = True
        elif seen_action and event.get("event") == "user":
            return event
    return None


class ActionSwitchFormsAsk(Action):
    """Ask whether to leave the current form for the task just asked for."""

    def name(self) -> Text:
        return ASK

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        current = tracker.active_loop_name
        intent = latest_intent(tracker)
        target = FORM_FOR_INTENT.get(intent or "")
        if current is None or target is None or target == current:
            raise ValueError(
                f"{ASK} ran with form {current!r} and intent {intent!r}; it needs an active form "
                f"and an intent that starts another one, one of {sorted(FORM_FOR_INTENT)} "
                "(check data/rules/switching.yml)"
            )
        dispatcher.utter_message(response=f"utter_switch_to_{target}")
        # The form stays active, but with no question pending the yes or no
        # that comes next can't be taken as an answer to it.
        return [SlotSet(NEXT_FORM, target), SlotSet(REQUESTED_SLOT, None)]


class ActionSwitchFormsAffirm(Action):
    """Put the current form's answers aside and start the new task with what its request said."""

    def name(self) -> Text:
        return "action_switch_forms_affirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        current = tracker.active_loop_name
        target = tracker.get_slot(NEXT_FORM)
        if current is None or target is None:
            raise ValueError(
                f"action_switch_forms_affirm ran with form {current!r} and {NEXT_FORM}={target!r}; "
                f"it must follow {ASK} (check data/rules/switching.yml)"
            )
        stash = read_stash(tracker)
        # Tasks wait only while a chain of switches is open; an old chain the
        # person walked away from (said no to going back) is dropped here.
        waiting = stash["waiting"] if tracker.get_slot(PREVIOUS_FORM) else []
        answers = {slot: tracker.get_slot(slot) for slot in kept_slots(domain, current)}
        waiting.append({"form": current, "slots": answers})
        dispatcher.utter_message(response="utter_switch_forms_affirm")
        events: List[EventType] = [
            SlotSet(NEXT_FORM, None),
            SlotSet(PREVIOUS_FORM, current),
            SlotSet(STASH, {"waiting": waiting, "offered": None}),
        ]
        events += [SlotSet(slot, None) for slot in kept_slots(domain, target) + [CONFIRM_SLOT]]
        events += self._slots_from_request(tracker, target)
        # The person just chose the new task, so its form needs no "carry on?" question.
        events.append(SlotSet(CONTINUE_SLOT, True))
        return events

    @staticmethod
    def _slots_from_request(tracker: Tracker, target: Text) -> List[EventType]:
        request = _request_before(tracker, ASK)
        if request is None:
            return []
        parse = request.get("parse_data") or {}
        events: List[EventType] = []
        for entity in parse.get("entities") or []:
            slot = ENTITY_SLOTS[target].get(entity.get("entity"))
            if slot is not None and entity.get("value") is not None:
                events.append(SlotSet(slot, entity["value"]))
        if target == SEARCH_FORM and (parse.get("intent") or {}).get("name") == "check_earnings":
            events.append(SlotSet("search_type", "deposit"))
        return events


class ActionSwitchFormsDeny(Action):
    """Stay with the current form."""

    def name(self) -> Text:
        return "action_switch_forms_deny"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_switch_forms_deny")
        return [SlotSet(NEXT_FORM, None)]


class ActionSwitchBackAsk(Action):
    """Offer to go back to the task left most recently; the person's yes resumes its form."""

    def name(self) -> Text:
        return BACK_ASK

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        stash = read_stash(tracker)
        waiting = stash["waiting"]
        events: List[EventType] = [SlotSet(PREVIOUS_FORM, None)]
        if not waiting:
            return events
        offered = waiting.pop()
        dispatcher.utter_message(response="utter_ask_{}_AA_CONTINUE_FORM".format(offered["form"]))
        events.append(SlotSet(STASH, {"waiting": waiting, "offered": offered}))
        return events
