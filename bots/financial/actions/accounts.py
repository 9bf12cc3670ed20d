"""Answer questions about the profile: balances, saved recipients, transfer charges."""
from typing import Any, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import profiles
from .common import join_names
from .parsing import format_amount
from .payment import match_card


class ActionSessionStart(Action):
    """Start a session with the person's demo profile ready, carrying slots over."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        with profiles.connect() as db:
            profiles.ensure_profile(db, tracker.sender_id)
        events: List[EventType] = [SessionStarted()]
        # The domain keeps slots across sessions; a custom session start must do that itself.
        if domain.get("session_config", {}).get("carry_over_slots_to_new_session", True):
            events.extend(SlotSet(name, value) for name, value in tracker.slots.items() if value is not None)
        events.append(ActionExecuted("action_listen"))
        return events


class ActionShowBalance(Action):
    """Tell the bank balance, one card's balance, or all of them."""

    def name(self) -> Text:
        return "action_show_balance"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        card = match_card(next(tracker.get_latest_entity_values("credit_card"), None))
        account_type = next(tracker.get_latest_entity_values("account_type"), None)
        with profiles.connect() as db:
            accounts = profiles.list_accounts(db, tracker.sender_id)
        bank = accounts[0]
        cards = [account for account in accounts if account.kind == profiles.CREDIT]
        if card is not None:
            cards = [account for account in cards if account.name == card]
        if account_type == profiles.BANK and card is None:
            dispatcher.utter_message(response="utter_bank_balance", amount=format_amount(bank.balance))
        elif account_type == profiles.CREDIT or card is not None:
            for account in cards:
                dispatcher.utter_message(
                    response="utter_card_balance", card=_title(account.name),
                    amount=format_amount(account.balance), minimum=format_amount(account.minimum_due),
                )
        else:
            dispatcher.utter_message(
                response="utter_all_balances", bank=format_amount(bank.balance),
                cards=join_names(["{} {}".format(_title(a.name), format_amount(a.balance)) for a in cards]),
            )
        return []


class ActionShowRecipients(Action):
    """List the saved recipients money can be sent to."""

    def name(self) -> Text:
        return "action_show_recipients"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        with profiles.connect() as db:
            names = profiles.list_recipients(db, tracker.sender_id)
        dispatcher.utter_message(response="utter_recipients", names=join_names(names))
        return []


class ActionShowTransferCharge(Action):
    """Explain what transfers cost (nothing, in this demo bank)."""

    def name(self) -> Text:
        return "action_show_transfer_charge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_transfer_charge")
        return []


def _title(name: Any) -> Text:
    return str(name).title()
