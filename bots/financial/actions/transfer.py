"""Send money to someone: validate the form's answers and carry out the transfer."""
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

FORM_SLOTS = ("PERSON", "amount-of-money", "zz_confirm_form")

# "$1,200.50", "50 dollars", "25.5": digits with optional thousands commas and cents.
# Anything else that looks numeric ("12.345", "1,2") is refused rather than guessed.
AMOUNT_PATTERN = re.compile(
    r"(-)?\s*\$?\s*(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?![.,]?\d)"
)
# Words people put around a name ("to Maria", "send it to Tom.") that are not the name.
NAME_NOISE = re.compile(
    r"^(?:(?:send|pay|it|the money|money|goes)\s+)*(?:to\b\s*)?", re.IGNORECASE
)


def parse_amount(text: Text) -> Optional[Decimal]:
    """Return the positive amount written in ``text``, or None if there is none."""
    match = AMOUNT_PATTERN.search(text)
    if match is None or match.group(1):
        return None
    digits = match.group(2).replace(",", "") + "." + (match.group(3) or "0")
    try:
        amount = Decimal(digits)
    except InvalidOperation:
        return None
    return amount if amount > 0 else None


def format_amount(amount: Decimal) -> Text:
    """Return ``amount`` the way the bot says it back, e.g. ``$1,200.50``."""
    return "${:,.2f}".format(amount)


def clean_name(text: Text) -> Optional[Text]:
    """Return the name in an answer like "to Maria", or None if nothing is left."""
    name = NAME_NOISE.sub("", text.strip()).strip(" .,!?;:")
    return name or None


class ValidateTransferMoneyForm(FormValidationAction):
    """Check each answer of ``transfer_money_form`` and ask again when it is unusable."""

    def name(self) -> Text:
        return "validate_transfer_money_form"

    def validate_PERSON(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        name = clean_name(str(slot_value or ""))
        if name is None:
            dispatcher.utter_message(response="utter_no_person")
        return {"PERSON": name}

    def validate_amount_of_money(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        amount = parse_amount(str(slot_value or ""))
        if amount is None:
            dispatcher.utter_message(response="utter_no_amount")
            return {"amount-of-money": None}
        return {"amount-of-money": format_amount(amount)}


# rasa-sdk finds validators by the name validate_<slot>, and this slot's name
# (kept from the starter packs) has hyphens, which a def cannot have.
setattr(
    ValidateTransferMoneyForm,
    "validate_amount-of-money",
    ValidateTransferMoneyForm.validate_amount_of_money,
)


class ActionTransferMoney(Action):
    """Carry out the transfer the form collected, or cancel it if the person said no."""

    def name(self) -> Text:
        return "action_transfer_money"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.get_slot("zz_confirm_form"):
            # The response fills itself from the slots, which are still set here.
            dispatcher.utter_message(response="utter_transfer_complete")
        else:
            dispatcher.utter_message(response="utter_transfer_canceled")
        # Clear the answers so the next transfer starts from an empty form.
        return [SlotSet(slot, None) for slot in FORM_SLOTS]
