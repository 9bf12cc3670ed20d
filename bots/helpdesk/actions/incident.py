"""Open IT incidents and report their status: form validators and the actions behind them."""
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .incidents_db import create_incident, find_incident, find_numbers, list_incidents

FORM_SLOTS = ("email", "priority", "problem_description", "incident_title", "confirm")

# Strict enough to drop the brackets and quotes people type around an address.
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# People say "urgent" or "normal" as often as the three levels themselves.
PRIORITY_WORDS = {
    "low": "low",
    "minor": "low",
    "medium": "medium",
    "normal": "medium",
    "moderate": "medium",
    "high": "high",
    "urgent": "high",
    "urgently": "high",
    "critical": "high",
}


def find_email(text: Text) -> Optional[Text]:
    """Return the first email address in ``text``, lower-cased, or None."""
    match = EMAIL_PATTERN.search(text)
    if match is None:
        return None
    return match.group(0).lower()


# "Not urgent" is low, not high: a negated or relaxed wording wins over the word it negates.
LOW_PRIORITY_PHRASES = re.compile(
    r"\b(?:no (?:rush|hurry)|(?:it )?can wait|whenever|not (?:a |the )?(?:top )?priority|"
    r"(?:not|isn'?t|is not|nothing)(?: (?:very|that|so|really|too|super|terribly|particularly|at all))?"
    r" (?:urgent|important|critical|pressing|serious|high)|non[- ]?urgent)\b"
)


def find_priority(text: Text) -> Optional[Text]:
    """Return low, medium or high if ``text`` names a priority, else None."""
    text = text.lower().replace("\u2019", "'")
    if LOW_PRIORITY_PHRASES.search(text):
        return "low"
    for word in re.findall(r"[a-z]+", text):
        if word in PRIORITY_WORDS:
            return PRIORITY_WORDS[word]
    return None


def clean_text(value: Any) -> Optional[Text]:
    """Return ``value`` as stripped text, or None if nothing is left."""
    text = str(value or "").strip()
    return text or None


def validate_email_answer(
    slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
) -> Dict[Text, Any]:
    """Return the slots an answer to the email question sets, shared by both forms.

    When a previous email was offered for reuse (``action_ask_email``), yes takes
    it and no forgets it, so the question comes back without the offer.
    """
    previous = tracker.get_slot("previous_email")
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if previous and intent == "affirm":
        return {"email": previous, "caller_id": previous}
    if previous and intent == "deny":
        return {"email": None, "previous_email": None}
    email = find_email(str(slot_value or ""))
    if email is None:
        dispatcher.utter_message(response="utter_no_email")
    return {"email": email, "caller_id": email}


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
        return validate_email_answer(slot_value, dispatcher, tracker)

    def validate_priority(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        # The words typed decide, so "not urgent" can't become high through the entity "urgent".
        said = str(tracker.latest_message.get("text") or "")
        priority = find_priority(said) or find_priority(str(slot_value or ""))
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


class ValidateIncidentStatusForm(FormValidationAction):
    """Check the email ``incident_status_form`` asks for."""

    def name(self) -> Text:
        return "validate_incident_status_form"

    def validate_email(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        return validate_email_answer(slot_value, dispatcher, tracker)


class ActionAskEmail(Action):
    """Ask for the email, offering to reuse the one given earlier in the conversation."""

    def name(self) -> Text:
        return "action_ask_email"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.get_slot("previous_email"):
            dispatcher.utter_message(response="utter_ask_use_previous_email")
        else:
            dispatcher.utter_message(response="utter_ask_email")
        return []


class ActionOpenIncident(Action):
    """Open the incident the form collected, or drop it if the person said no."""

    def name(self) -> Text:
        return "action_open_incident"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        email = tracker.get_slot("email")
        if tracker.get_slot("confirm"):
            incident = create_incident(
                email=email,
                priority=tracker.get_slot("priority"),
                title=tracker.get_slot("incident_title"),
                description=tracker.get_slot("problem_description"),
                conversation_id=tracker.sender_id,
            )
            # The response fills the rest from the slots, which are still set here.
            dispatcher.utter_message(response="utter_incident_created", incident_number=incident.number)
        else:
            dispatcher.utter_message(response="utter_incident_creation_canceled")
        # Clear the answers so the next incident starts from an empty form, and
        # keep the email to offer it again.
        return [SlotSet(slot, None) for slot in FORM_SLOTS] + [SlotSet("previous_email", email)]


class ActionCheckIncidentStatus(Action):
    """Report the incidents the person may see: opened in this conversation, or quoted by number.

    An email alone never shows another conversation's incidents: anyone can type
    an address, but only the person who opened an incident was told its number.
    """

    def name(self) -> Text:
        return "action_check_incident_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        email = tracker.get_slot("email") or ""
        shown = list_incidents(email, tracker.sender_id)
        for number in quoted_numbers(tracker):
            incident = find_incident(number, email)
            if incident is None:
                dispatcher.utter_message(response="utter_incident_not_found", number=number)
            elif incident.number not in {known.number for known in shown}:
                shown.append(incident)
        if not shown:
            dispatcher.utter_message(response="utter_no_incidents")
        else:
            dispatcher.utter_message(response="utter_incidents_found")
        for incident in shown:
            dispatcher.utter_message(
                response="utter_incident_summary",
                number=incident.number,
                title=incident.title,
                state=incident.state,
                priority=incident.priority,
                created=incident.created_at[:10],
            )
        return [SlotSet("email", None), SlotSet("previous_email", email or None)]


def quoted_numbers(tracker: Tracker) -> List[Text]:
    """Return the incident numbers the person typed since asking for a status."""
    texts: List[Text] = []
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        texts.append(event.get("text") or "")
        if (event.get("parse_data") or {}).get("intent", {}).get("name") == "incident_status":
            break
    return find_numbers(" ".join(reversed(texts)))
