"""Send money to a saved recipient: validate the form's answers and carry out the transfer."""
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import profiles
from .common import (
    CONFIRM_SLOT,
    TRANSFER_FORM,
    TaskFormValidation,
    best_match,
    finish_form,
    join_names,
    today,
)
from .parsing import amount_from_slot, format_amount, parse_amount


def recipient_choices(names: List[Text]) -> Dict[Text, Text]:
    """Return every accepted spelling of the recipients: full name and first name."""
    choices = {name.lower(): name for name in names}
    choices.update({name.split()[0].lower(): name for name in names})
    return choices


class ValidateTransferMoneyForm(TaskFormValidation):
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
        with profiles.connect() as db:
            names = profiles.list_recipients(db, tracker.sender_id)
        name = best_match(str(slot_value or ""), recipient_choices(names))
        if name is None:
            dispatcher.utter_message(response="utter_no_person", names=join_names(names))
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
        with profiles.connect() as db:
            balance = profiles.get_account(db, tracker.sender_id, profiles.BANK).balance
        if amount > balance:
            dispatcher.utter_message(response="utter_insufficient_funds", balance=format_amount(balance))
            return {"amount-of-money": None}
        return {"amount-of-money": format_amount(amount)}


class ActionTransferMoney(Action):
    """Carry out the transfer the form collected, or cancel it if the person said no."""

    def name(self) -> Text:
        return "action_transfer_money"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        amount = amount_from_slot(tracker.get_slot("amount-of-money"))
        name = tracker.get_slot("PERSON")
        if tracker.get_slot(CONFIRM_SLOT) is True and amount is not None and name:
            with profiles.connect() as db:
                try:
                    bank = profiles.transfer(db, tracker.sender_id, name, amount, today())
                except ValueError:
                    # The balance changed since the form checked it (another payment in between).
                    bank = None
            if bank is None:
                dispatcher.utter_message(response="utter_transfer_canceled")
            else:
                dispatcher.utter_message(
                    response="utter_transfer_complete",
                    amount=format_amount(amount), name=name, bank=format_amount(bank),
                )
        else:
            dispatcher.utter_message(response="utter_transfer_canceled")
        return finish_form(tracker, domain, TRANSFER_FORM)
