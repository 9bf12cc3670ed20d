"""Open an IT incident: validate the form's answers and submit it."""
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

FORM_SLOTS = ("email", "priority", "problem_description", "incident_title", "confirm")

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
# People say "urgent" or "normal" as often as the three levels themselves.
PRIORITY_WORDS = {
    "low": "low",
    "minor": "low",
    "medium": "medium",
    "normal": "medium",
    "moderate": "medium",
    "high": "high",
    "urgent": "high",
    "critical": "high",
}


def find_email(text: Text) -> Optional[Text]:
    """Return the first email address in ``text``, lower-cased, or None."""
    match = EMAIL_PATTERN.search(text)
    if match is None:
        return None
    return match.group(0).rstrip(".,;:!?)").lower()


def find_priority(text: Text) -> Optional[Text]:
    """Return low, medium or high if ``text`` names a priority, else None."""
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in PRIORITY_WORDS:
            return PRIORITY_WORDS[word]
    return None


def clean_text(value: Any) -> Optional[Text]:
    """Return ``value`` as stripped text, or None if nothing is left."""
    text = str(value or "").strip()
    return text or None


class ValidateOpenIncidentForm(FormValidationAction):
    """Check each answer of ``open_incident_form`` and ask again when it is unusable."""

    def name(self) -> Text:
        return "validate_open_incident_form"

    def validate_email(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        email = find_email(str(slot_value or ""))
        if email is None:
            dispatcher.utter_message(response="utter_no_email")
        return {"email": email}

    def validate_priority(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        priority = find_priority(str(slot_value or ""))
        if priority is None:
            dispatcher.utter_message(response="utter_no_priority")
        return {"priority": priority}

    def validate_problem_description(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        return {"problem_description": clean_text(slot_value)}

    def validate_incident_title(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        return {"incident_title": clean_text(slot_value)}


class ActionOpenIncident(Action):
    """Open the incident the form collected, or drop it if the person said no."""

    def name(self) -> Text:
        return "action_open_incident"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.get_slot("confirm"):
            # The response fills itself from the slots, which are still set here.
            dispatcher.utter_message(response="utter_incident_created")
        else:
            dispatcher.utter_message(response="utter_incident_creation_canceled")
        # Clear the answers so the next incident starts from an empty form.
        return [SlotSet(slot, None) for slot in FORM_SLOTS]
