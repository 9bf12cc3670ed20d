"""What a bot makes of an arrival: the same handoff told twice is one arrival.

The chatroom sends the handoff envelope as REST metadata (key ``handoff``) on
the arrival message ``/handoff{"from_host": ...}``. After a crash it may send
the same arrival again (same ``handoff_id``) to finish a handoff cut short. It
is still one arrival: not a return to this bot.

Imported by the action servers (Python 3.8-3.10).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from handoff.envelope import HANDOFF_ID, METADATA_KEY
from handoff.payload import ARRIVAL_INTENT


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
