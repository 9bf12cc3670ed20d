"""The handoff actions every bot registers: offer the hosts, hand off, greet an arrival.

A bot's ``actions/handoff.py`` imports this module; rasa-sdk registers every
imported Action subclass, so each action server serves these one implementations.
The words a person reads live in each bot's responses, not here.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff.config import ConfigError, HandoffConfig, Host, current_config, own_host_id
from handoff.payload import ARRIVAL_INTENT, HANDOFF_TO, handoff_payload, trigger_message

logger = logging.getLogger(__name__)

# The chatroom speaks Rasa's REST channel; elsewhere (rasa shell, rasa test) a
# handoff payload would go nowhere, so the bot says what it would have done.
HANDOFF_CHANNEL = "rest"
# Answers to the offer and arrivals are never the reason for a handoff; a
# request typed in words ("take me to the banking assistant") is.
NOT_A_REASON = {ARRIVAL_INTENT, "affirm", "deny"}


def _load() -> HandoffConfig:
    """Return the current config and this bot's id, failing loudly if either is unusable."""
    config = current_config()
    config.get_host(own_host_id())
    return config


def handoff_reason(tracker: Tracker) -> Optional[Text]:
    """Return what the person said that led to the handoff, for whoever receives them."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
        text = (event.get("text") or "").strip()
        if intent not in NOT_A_REASON and text and not text.startswith("/"):
            return text
    return None


def is_return(tracker: Tracker) -> bool:
    """Tell whether the person talked to this bot before the arrival being handled."""
    user_events = [e for e in tracker.events if e.get("event") == "user"]
    return len(user_events) > 1


def offer_hosts(dispatcher: CollectingDispatcher, config: HandoffConfig, preferred: Optional[Text]) -> None:
    """Send one button per host this bot can hand the person to, ``preferred`` first."""
    others = sorted(config.other_hosts(own_host_id()), key=lambda host: host.id != preferred)
    if not others:
        dispatcher.utter_message(response="utter_no_handoff")
        return
    buttons = [{"title": button_title(host), "payload": trigger_message(host.id)} for host in others]
    dispatcher.utter_message(buttons=buttons)


CLOSED_TITLE = "{title} (closed, opens {opens})"


def button_title(host: Host) -> Text:
    """Return the host's title, saying when it opens if it is a desk that is closed now."""
    opens = host.hours.opens() if host.hours is not None else None
    return CLOSED_TITLE.format(title=host.title, opens=opens) if opens else host.title


class ActionHandoffOptions(Action):
    """Offer one button per host this bot can hand the person to.

    A host already named in slot ``handoff_to`` (say, by a slot mapping from an
    intent that belongs to another assistant) is offered first. A desk outside
    its hours is still offered, with when it opens: a message left there waits
    in its queue for the next shift.
    """

    def name(self) -> Text:
        return "action_handoff_options"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        offer_hosts(dispatcher, _load(), tracker.get_slot(HANDOFF_TO))
        # The button the person presses sets the slot again; a stale preference must not linger.
        return [SlotSet(HANDOFF_TO, None)]


class ActionHandoff(Action):
    """Hand the person to the host named in slot ``handoff_to``.

    A name that is not another host ("the computer help bot", or this bot
    itself) was still a request for someone else, so the hosts are offered.
    """

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        config = _load()
        target_id = tracker.get_slot(HANDOFF_TO)
        target = config.find_host(target_id)
        clear = [SlotSet(HANDOFF_TO, None)]
        if target is None or target.id == own_host_id():
            logger.info("handoff to %r: not another host in %s, offering the hosts", target_id, config.path)
            dispatcher.utter_message(response="utter_ask_handoff")
            offer_hosts(dispatcher, config, None)
            return clear
        if tracker.get_latest_input_channel() != HANDOFF_CHANNEL:
            dispatcher.utter_message(response="utter_wouldve_handed_off", host_title=target.title)
            return clear
        dispatcher.utter_message(response="utter_handoff", host_title=target.title)
        dispatcher.utter_message(
            json_message=handoff_payload(
                target.url, target.title, host_id=target.id, reason=handoff_reason(tracker)
            )
        )
        return clear


class ActionGreetArrival(Action):
    """Greet a person handed over to this bot, or welcome them back where they left off."""

    def name(self) -> Text:
        return "action_greet_arrival"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        config = _load()
        me = config.get_host(own_host_id())
        response = "utter_welcome_back" if is_return(tracker) else "utter_handoff_arrival"
        dispatcher.utter_message(response=response, host_title=me.title)
        return []


def check_config_at_start() -> None:
    """Stop the action server at start-up if the config or host id is unusable."""
    try:
        _load()
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


check_config_at_start()
