"""The handoff wire contract: payload keys and the messages built from them.

A bot hands off by sending ``{"custom": {"handoff_host": url, "title": title}}``
(optionally with ``handoff_to``, and beside them the handoff envelope's keys,
``reason`` first: see ``handoff/envelope.py``); the chatroom tells the new host
where the person came from with ``/handoff{"from_host": url}``.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

CUSTOM = "custom"
HANDOFF_HOST = "handoff_host"
TITLE = "title"
HANDOFF_TO = "handoff_to"
REASON = "reason"
FROM_HOST = "from_host"

ARRIVAL_INTENT = "handoff"
TRIGGER_INTENT = "trigger_handoff"


def _intent_message(intent: str, entities: Dict[str, str]) -> str:
    # A serializer, never string interpolation, so quotes in values stay data.
    return f"/{intent}{json.dumps(entities, separators=(',', ':'), ensure_ascii=False)}"


def arrival_message(from_url: str) -> str:
    """Return the message that tells a host the person arrives from ``from_url``."""
    return _intent_message(ARRIVAL_INTENT, {FROM_HOST: from_url})


def trigger_message(host_id: str) -> str:
    """Return the button payload that asks a bot to hand off to ``host_id``."""
    return _intent_message(TRIGGER_INTENT, {HANDOFF_TO: host_id})


def handoff_payload(
    url: str, title: str, host_id: Optional[str] = None, reason: Optional[str] = None
) -> Dict[str, str]:
    """Return the body of the custom message a bot sends to hand off."""
    payload = {HANDOFF_HOST: url, TITLE: title}
    if host_id:
        payload[HANDOFF_TO] = host_id
    if reason:
        payload[REASON] = reason
    return payload


def find_handoff(message: Any) -> Optional[Dict[str, Any]]:
    """Return the handoff request inside a REST channel message, or None if it has none."""
    if not isinstance(message, dict):
        return None
    custom = message.get(CUSTOM)
    if not isinstance(custom, dict):
        return None
    if HANDOFF_HOST not in custom and HANDOFF_TO not in custom:
        return None
    return custom
