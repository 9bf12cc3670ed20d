"""Switch to another task in the middle of a form, and offer to go back afterwards.

The rules read two slots: ``next_form_name`` (the task asked for) and
``previous_form_name`` (the task left waiting). The waiting form's answers are
kept in ``form_stash`` because the forms share slots (amount-of-money, time).
"""
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .common import (
    CONTINUE_SLOT,
    FORM_FOR_INTENT,
    NEXT_FORM,
    PREVIOUS_FORM,
    STASH,
    TIME_FORMATTED,
    form_slots,
)


class ActionSwitchFormsAsk(Action):
    """Ask whether to leave the current form for the task just asked for."""

    def name(self) -> Text:
        return "action_switch_forms_ask"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        current = tracker.active_loop_name
        intent = tracker.get_intent_of_latest_message()
        target = FORM_FOR_INTENT.get(intent or "")
        if current is None or target is None:
            raise ValueError(
                f"action_switch_forms_ask ran with form {current!r} and intent {intent!r}; "
                f"it needs an active form and one of {sorted(FORM_FOR_INTENT)} "
                "(check data/rules/switching.yml)"
            )
        dispatcher.utter_message(response=f"utter_switch_to_{target}")
        # Pause the form so the yes/no answer can't fill one of its slots.
        return [
            SlotSet(NEXT_FORM, target),
            SlotSet(PREVIOUS_FORM, current),
            SlotSet("requested_slot", None),
            ActiveLoop(None),
        ]


class ActionSwitchFormsAffirm(Action):
    """Put the current form's answers aside and start the new task from scratch."""

    def name(self) -> Text:
        return "action_switch_forms_affirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        previous = tracker.get_slot(PREVIOUS_FORM)
        target = tracker.get_slot(NEXT_FORM)
        stash: Dict[Text, Any] = {
            slot: tracker.get_slot(slot) for slot in form_slots(domain, previous) + [TIME_FORMATTED]
        }
        dispatcher.utter_message(response="utter_switch_forms_affirm")
        events: List[EventType] = [SlotSet(STASH, stash)]
        events += [SlotSet(slot, None) for slot in form_slots(domain, target) + [TIME_FORMATTED]]
        # The person just chose the new task, so its form needs no "carry on?" question.
        events.append(SlotSet(CONTINUE_SLOT, True))
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
    """Bring back the waiting form's answers; the form then asks whether to go on with it."""

    def name(self) -> Text:
        return "action_switch_back_ask"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        stash = tracker.get_slot(STASH) or {}
        dispatcher.utter_message(response="utter_switch_back")
        events: List[EventType] = [SlotSet(slot, value) for slot, value in stash.items()]
        # An empty AA_CONTINUE_FORM makes the form's first question "go back to ...?".
        events += [SlotSet(CONTINUE_SLOT, None), SlotSet(STASH, None), SlotSet(NEXT_FORM, None)]
        return events
