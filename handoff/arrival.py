"""What a bot makes of an arrival: the request it can act on at once, and an arrival told twice.

The chatroom sends the handoff envelope as REST metadata (key ``handoff``) on
the arrival message ``/handoff{"from_host": ...}``. When the host handed from
passed on the person's own words (``request``) and the reason says they were
about a task, the bot's REST channel (``handoff/channel.py``) gives those
words to the bot as the person's next message, right after the arrival, and
both answers go back in one reply: handed "I want to pay my emblem card", the
Financial Assistant starts that payment instead of asking what the person
wants. The channel first lets the bot's own NLU read the words and feeds them
only if they start something the bot does: not a miss, not small talk or an
answer, not another handoff, not a request it would itself point elsewhere.
It marks the arrival so the greeting knows the request follows.

After a crash the chatroom may send the same arrival again (same
``handoff_id``). It is still one arrival: not a return to this bot, and its
request is not fed twice.

Imported by the action servers (Python 3.8-3.10) and the bots' REST channel.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Set

from handoff.envelope import (
    HANDOFF_ID,
    METADATA_KEY,
    NAMED_TARGET,
    NOT_UNDERSTOOD,
    OUT_OF_DOMAIN,
    REQUEST,
)
from handoff.payload import ARRIVAL_INTENT, REASON, TRIGGER_INTENT

# Reasons whose request is about something to do, which the receiver may be able to do.
# (asked_for_human: the words asked for someone; a hand-back or a loop carries no request.)
FORWARDED_REASONS = (OUT_OF_DOMAIN, NAMED_TARGET, NOT_UNDERSTOOD)
# Set on the arrival by the channel: the envelope's request follows as the next message.
REQUEST_FOLLOWS = "handoff_request_follows"
# Set on the message the channel feeds: the handoff whose request it is.
REQUEST_OF = "handoff_request_of"
# The intents every bot shares are about the conversation itself (greetings, answers,
# thanks, handoffs, a miss, a restart), never a task to start: words read as one are not fed.
NOT_ACTED_ON = frozenset({
    "greet", "goodbye", "affirm", "deny", "help", "out_of_scope", "restart", "inform", "thank", "thankyou",
    "bot_challenge", "check_human", "human_handoff", TRIGGER_INTENT, ARRIVAL_INTENT, "nlu_fallback",
})


def envelope_of(metadata: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Return the handoff envelope in a message's metadata ({} if there is none)."""
    envelope = (metadata or {}).get(METADATA_KEY)
    return envelope if isinstance(envelope, dict) else {}


def handoff_id_of(metadata: Optional[Mapping[str, Any]]) -> Optional[str]:
    value = envelope_of(metadata).get(HANDOFF_ID)
    return value if isinstance(value, str) and value else None


def is_arrival(text: Optional[str]) -> bool:
    """Tell whether a message is the chatroom's arrival message ``/handoff{...}``."""
    prefix = "/" + ARRIVAL_INTENT
    return bool(text) and text.startswith(prefix) and text[len(prefix):][:1] in ("", "{")


def request_to_forward(text: Optional[str], metadata: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Return the request an arrival passes on for the bot to act on, or None.

    Only the person's words count: a request that is itself a command
    (``/intent``) is never fed to a bot.
    """
    if not is_arrival(text):
        return None
    envelope = envelope_of(metadata)
    request = envelope.get(REQUEST)
    if envelope.get(REASON) not in FORWARDED_REASONS or not isinstance(request, str):
        return None
    request = request.strip()
    return request if request and not request.startswith("/") else None


def forwarded_before(user_metadata: Iterable[Optional[Mapping[str, Any]]], handoff_id: Optional[str]) -> bool:
    """Tell whether the request of handoff ``handoff_id`` was fed already (from user messages' metadata)."""
    return handoff_id is not None and any(
        (metadata or {}).get(REQUEST_OF) == handoff_id for metadata in user_metadata
    )


def intents_pointing_elsewhere(handoff_to_mappings: Sequence[Mapping[str, Any]]) -> Set[str]:
    """Return the intents a bot maps to another host (``from_intent`` mappings of slot ``handoff_to``)."""
    found: Set[str] = set()
    for mapping in handoff_to_mappings:
        if mapping.get("type") != "from_intent" or not mapping.get("value"):
            continue
        intents = mapping.get("intent")
        found.update([intents] if isinstance(intents, str) else list(intents or []))
    return found


def acts_on(intent: Optional[str], pointing_elsewhere: Set[str]) -> bool:
    """Tell whether the bot would act on words its NLU read as ``intent``."""
    return bool(intent) and intent not in NOT_ACTED_ON and intent not in pointing_elsewhere


def request_follows(metadata: Optional[Mapping[str, Any]]) -> bool:
    return (metadata or {}).get(REQUEST_FOLLOWS) is True


def visited_before(user_events: Sequence[Mapping[str, Any]]) -> bool:
    """Tell whether the person wrote to this bot before the arrival that ends ``user_events``.

    Arrivals of one handoff (the same ``handoff_id``) are one visit: only what
    came before the first of them counts.
    """
    if not user_events:
        return False
    handoff_id = handoff_id_of(user_events[-1].get("metadata"))
    if handoff_id is not None:
        for index, event in enumerate(user_events):
            if is_arrival(event.get("text")) and handoff_id_of(event.get("metadata")) == handoff_id:
                return index > 0
    return len(user_events) > 1

