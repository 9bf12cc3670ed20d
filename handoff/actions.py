"""The handoff actions every bot registers: offer the hosts, hand off, greet an arrival.

A bot's ``actions/handoff.py`` imports this module; rasa-sdk registers every
imported Action subclass, so each action server serves these one implementations.
The words a person reads live in each bot's responses, not here.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff import arrival
from handoff.config import ConfigError, HandoffConfig, Host, current_config, own_host_id
from handoff.envelope import ASKED_FOR_HUMAN, NAMED_TARGET, NOT_UNDERSTOOD, OUT_OF_DOMAIN, build_envelope
from handoff.payload import ARRIVAL_INTENT, HANDOFF_TO, TRIGGER_INTENT, handoff_payload, trigger_message

logger = logging.getLogger(__name__)

# The chatroom speaks Rasa's REST channel; elsewhere (rasa shell, rasa test) a
# handoff payload would go nowhere, so the bot says what it would have done.
HANDOFF_CHANNEL = "rest"
# Answers to an offer and arrivals are never the person's request.
NOT_A_REQUEST = {ARRIVAL_INTENT, "affirm", "deny"}
# Actions that offer the hosts: a choice made right after one answers that offer.
OFFER_ACTIONS = {"action_handoff_options", "action_handoff"}
# Why a person was offered the hosts, by what they said before the offer.
REASON_OF_INTENT = {
    "human_handoff": ASKED_FOR_HUMAN, "nlu_fallback": NOT_UNDERSTOOD, TRIGGER_INTENT: NAMED_TARGET,
}
# Slots that only keep a bot's own books, worthless to whoever receives the person:
# Rasa's, the handoff actions', and the starter packs' form bookkeeping.
BOOKKEEPING_SLOTS = frozenset({
    "requested_slot", "session_started_metadata", HANDOFF_TO,
    "AA_CONTINUE_FORM", "zz_confirm_form", "confirm", "next_form_name", "previous_form_name",
    "form_stash", "time_formatted", "previous_email", "caller_id",
})
# The optional greeting for an arrival whose request follows at once (see handoff/arrival.py).
ARRIVAL_WITH_REQUEST = "utter_handoff_arrival_request"


def _load() -> HandoffConfig:
    """Return the current config and this bot's id, failing loudly if either is unusable."""
    config = current_config()
    config.get_host(own_host_id())
    return config


def _intent(event: Dict[Text, Any]) -> Optional[Text]:
    return ((event.get("parse_data") or {}).get("intent") or {}).get("name")


def _happened(
    events: List[Dict[Text, Any]], since: int, until: int, check: Callable[[Dict[Text, Any]], bool]
) -> bool:
    return any(check(event) for event in events[since + 1:until])


def _offers(event: Dict[Text, Any]) -> bool:
    return event.get("event") == "action" and event.get("name") in OFFER_ACTIONS


def _names_a_host(event: Dict[Text, Any]) -> bool:
    # Slot handoff_to filled by a mapping from an intent that belongs to another host.
    return event.get("event") == "slot" and event.get("name") == HANDOFF_TO and bool(event.get("value"))


def handoff_cause(events: List[Dict[Text, Any]]) -> Tuple[Text, Optional[Text]]:
    """Return why the person is being handed off (a reason of the envelope) and their words that led there.

    A choice made right after an offer answers it, so what brought the offer
    is the cause: a request the bot pointed to another host (out_of_domain), a
    request for someone else (asked_for_human), a second miss in a row
    (not_understood), a host named that the bot could not place
    (named_target). Without an offer, the person named the host themselves.
    """
    users = [index for index, event in enumerate(events) if event.get("event") == "user"]
    if not users:
        return ASKED_FOR_HUMAN, None
    cause = len(users) - 1
    if cause > 0 and _happened(events, users[cause - 1], users[cause], _offers):
        cause -= 1
    if cause < len(users) - 1 and _happened(events, users[cause], users[cause + 1], _names_a_host):
        reason = OUT_OF_DOMAIN
    else:
        reason = REASON_OF_INTENT.get(_intent(events[users[cause]]) or "", ASKED_FOR_HUMAN)
    return reason, _typed_request(events, users[:cause + 1])


def _typed_request(events: List[Dict[Text, Any]], users: List[int]) -> Optional[Text]:
    """Return the person's words behind the last of ``users``: buttons pressed lead back to what was typed."""
    for index in reversed(users):
        text = (events[index].get("text") or "").strip()
        if text.startswith("/"):
            continue
        return text if text and _intent(events[index]) not in NOT_A_REQUEST else None
    return None


def passed_slots(tracker: Tracker) -> Dict[Text, Any]:
    """Return the filled slots worth passing on: plain values, no bookkeeping."""
    return {
        name: value for name, value in tracker.slots.items()
        if name not in BOOKKEEPING_SLOTS and isinstance(value, (str, int, float, bool)) and value != ""
    }


def _words(name: Text) -> Text:
    return name.replace("_", " ")


def _listed(slots: Dict[Text, Any]) -> Text:
    return ", ".join(f"{_words(name)}: {value}" for name, value in slots.items())


def summarize(tracker: Tracker, domain: Dict[Text, Any], request: Optional[Text]) -> Optional[Text]:
    """Return the sender's short account: the task in progress, what is known so far, the last request.

    Built from the tracker alone, in the bot's own names for forms and slots.
    """
    slots = passed_slots(tracker)
    parts = []
    form = tracker.active_loop_name
    if form:
        required = ((domain.get("forms") or {}).get(form) or {}).get("required_slots")
        if isinstance(required, list):
            slots = {name: slots[name] for name in required if name in slots}
        details = [_listed(slots)] if slots else []
        asking = tracker.get_slot("requested_slot")
        if asking and asking not in BOOKKEEPING_SLOTS:
            details.append(f"waiting for {_words(asking)}")
        parts.append(f"Task in progress: {_words(form)}" + (f" ({'; '.join(details)})" if details else ""))
    elif slots:
        parts.append(f"Known so far: {_listed(slots)}")
    if request:
        parts.append(f'Last request: "{request}"')
    return ". ".join(parts) + "." if parts else None


def handoff_envelope(tracker: Tracker, domain: Dict[Text, Any]) -> Dict[Text, Any]:
    """Return the envelope a handoff from this tracker carries (unmasked: the chatroom masks it)."""
    reason, request = handoff_cause(tracker.events)
    return build_envelope(
        reason, summary=summarize(tracker, domain, request), slots=passed_slots(tracker), request=request,
    )


def is_return(tracker: Tracker) -> bool:
    """Tell whether the person talked to this bot before the arrival being handled.

    The same handoff told twice (after a crash) is one arrival, not a return.
    """
    return arrival.visited_before([event for event in tracker.events if event.get("event") == "user"])


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
        payload = handoff_payload(target.url, target.title, host_id=target.id)
        dispatcher.utter_message(json_message={**payload, **handoff_envelope(tracker, domain)})
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
        if is_return(tracker):
            response = "utter_welcome_back"
        elif arrival.request_follows(tracker.latest_message.get("metadata")) and ARRIVAL_WITH_REQUEST in (
            domain.get("responses") or {}
        ):
            response = ARRIVAL_WITH_REQUEST
        else:
            response = "utter_handoff_arrival"
        dispatcher.utter_message(response=response, host_title=me.title)
        return []


def check_config_at_start() -> None:
    """Stop the action server at start-up if the config or host id is unusable."""
    try:
        _load()
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


check_config_at_start()
