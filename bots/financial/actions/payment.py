"""Pay off a credit card from the bank account: validate the form's answers, then pay or schedule."""
import datetime
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import profiles
from .common import (
    CC_FORM,
    CONFIRM_SLOT,
    TIME_FORMATTED,
    TaskFormValidation,
    best_match,
    finish_form,
    today,
)
from .parsing import (
    FULL,
    MINIMUM,
    amount_from_slot,
    describe_date,
    format_amount,
    parse_card_amount,
    parse_date,
)

# Spellings people use for the cards beyond their names; typos are caught by best_match.
CARD_CHOICES = {card: card for card in profiles.CREDIT_CARDS}
CARD_CHOICES.update({
    "justice": "justice bank", "iron": "iron bank", "creditall": "credit all",
    "credit-all": "credit all", "emblem card": "emblem",
})


def match_card(text: Optional[Text]) -> Optional[Text]:
    """Return the card name ``text`` means ("emblm" -> "emblem"), or None."""
    return best_match(text or "", CARD_CHOICES)


class ValidateCcPaymentForm(TaskFormValidation):
    """Check each answer of ``cc_payment_form`` and ask again when it is unusable."""

    def name(self) -> Text:
        return "validate_cc_payment_form"

    def validate_credit_card(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        card = match_card(str(slot_value or ""))
        if card is None:
            dispatcher.utter_message(response="utter_no_credit_card")
        return {"credit_card": card}

    def validate_amount_of_money(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        parsed = parse_card_amount(str(slot_value or ""))
        card = match_card(tracker.get_slot("credit_card"))
        if parsed is None or card is None and parsed[0] != "amount":
            dispatcher.utter_message(response="utter_no_card_amount")
            return {"amount-of-money": None}
        with profiles.connect() as db:
            bank = profiles.get_account(db, tracker.sender_id, profiles.BANK).balance
            account = profiles.get_account(db, tracker.sender_id, card) if card else None
        kind, amount = parsed
        if kind == MINIMUM and account is not None:
            amount = account.minimum_due
        elif kind == FULL and account is not None:
            amount = account.balance
        if amount is None or amount <= 0:
            # Nothing owed: the minimum of a paid-off card is zero.
            dispatcher.utter_message(response="utter_no_card_amount")
            return {"amount-of-money": None}
        if account is not None and amount > account.balance:
            dispatcher.utter_message(
                response="utter_card_amount_too_high", credit_card=card, owed=format_amount(account.balance)
            )
            return {"amount-of-money": None}
        if amount > bank:
            dispatcher.utter_message(response="utter_insufficient_funds", balance=format_amount(bank))
            return {"amount-of-money": None}
        return {"amount-of-money": format_amount(amount)}

    def validate_time(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        now = today()
        day = parse_date(str(slot_value or ""), now, prefer="future")
        if day is None or day < now:
            dispatcher.utter_message(response="utter_no_payment_date")
            return {"time": None, TIME_FORMATTED: None}
        return {"time": day.isoformat(), TIME_FORMATTED: describe_date(day)}


class ActionPayCc(Action):
    """Pay the card the form collected, schedule it for a later day, or cancel if the person said no."""

    def name(self) -> Text:
        return "action_pay_cc"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        amount = amount_from_slot(tracker.get_slot("amount-of-money"))
        card = match_card(tracker.get_slot("credit_card"))
        day = _day_from_slot(tracker.get_slot("time"))
        events = finish_form(tracker, domain, CC_FORM)
        if tracker.get_slot(CONFIRM_SLOT) is not True or amount is None or card is None or day is None:
            dispatcher.utter_message(response="utter_cc_payment_canceled")
            return events
        now = today()
        with profiles.connect() as db:
            if day > now:
                # Money moves on the day: until then both balances stay as they are.
                profiles.schedule_card_payment(db, tracker.sender_id, card, amount, day)
                dispatcher.utter_message(
                    response="utter_cc_payment_scheduled",
                    amount=format_amount(amount), card=card.title(), day=describe_date(day),
                )
                return events
            try:
                paid = profiles.pay_card(db, tracker.sender_id, card, amount, now)
                bank = profiles.get_account(db, tracker.sender_id, profiles.BANK).balance
            except ValueError:
                # The bank balance changed since the form checked it.
                paid = None
        if paid is None:
            dispatcher.utter_message(response="utter_cc_payment_canceled")
        else:
            dispatcher.utter_message(
                response="utter_cc_payment_complete",
                amount=format_amount(amount), card=card.title(),
                owed=format_amount(paid.balance), bank=format_amount(bank),
            )
        return events


def _day_from_slot(value: Optional[Text]) -> Optional[datetime.date]:
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        return None
