"""The handoff envelope: the context a handoff carries, so the receiver does not start from nothing.

A bot puts these keys in its handoff payload beside ``handoff_host`` and
``title``; the chatroom checks them, fills in what only it knows for sure
(``from_host``, ``conversation_id``), masks personal data for a receiver that
is not ``trusted: true``, stores the envelope with the switch and gives it to
the receiver: a Rasa bot gets it as REST ``metadata`` (key ``handoff``) on the
arrival message, a desk in its session's metadata, an A2A agent as a data part.

Imported by the action servers (Python 3.8-3.10) and the chatroom.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional

from handoff.payload import FROM_HOST, REASON

# Why a person was handed off: a fixed vocabulary, so stats can group by it.
ASKED_FOR_HUMAN = "asked_for_human"
NAMED_TARGET = "named_target"
OUT_OF_DOMAIN = "out_of_domain"
NOT_UNDERSTOOD = "not_understood"
OPERATOR_HANDBACK = "operator_handback"
LOOP_DETECTED = "loop_detected"
REASONS = (ASKED_FOR_HUMAN, NAMED_TARGET, OUT_OF_DOMAIN, NOT_UNDERSTOOD, OPERATOR_HANDBACK, LOOP_DETECTED)

SUMMARY = "summary"
SLOTS = "slots"
CONVERSATION_ID = "conversation_id"
LANGUAGE = "language"
# The person's own words that led to the handoff (so the receiver can act on them).
REQUEST = "request"
# Names one handoff (set by the chatroom): an arrival told twice after a crash is still one arrival.
HANDOFF_ID = "handoff_id"
ENVELOPE_KEYS = (REASON, SUMMARY, SLOTS, FROM_HOST, CONVERSATION_ID, LANGUAGE, REQUEST, HANDOFF_ID)
# Where a Rasa bot finds the envelope in the arrival message's metadata.
METADATA_KEY = "handoff"

MAX_TEXT = 600
MAX_SLOTS = 20

EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})\b")
# Card and account numbers: 8 or more digits, possibly grouped by spaces or dashes.
LONG_NUMBER = re.compile(r"\b\d(?:[ -]?\d){7,}\b")


def mask_text(text: str) -> str:
    """Return ``text`` with email addresses and card or account numbers masked (last 4 digits kept)."""
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***{m.group(3)}", text)
    return LONG_NUMBER.sub(lambda m: "•••• " + re.sub(r"\D", "", m.group(0))[-4:], text)


def mask(envelope: Mapping[str, Any]) -> Dict[str, Any]:
    """Return a copy of the envelope with personal data masked in every text and slot value."""
    masked: Dict[str, Any] = dict(envelope)
    for key in (SUMMARY, REQUEST):
        if isinstance(masked.get(key), str):
            masked[key] = mask_text(masked[key])
    if isinstance(masked.get(SLOTS), dict):
        masked[SLOTS] = {
            name: mask_text(value) if isinstance(value, str) else value
            for name, value in masked[SLOTS].items()
        }
    return masked


def read_envelope(payload: Mapping[str, Any]) -> Dict[str, Any]:
    """Return the envelope keys of a handoff payload, keeping only well-formed values.

    A reason outside the vocabulary is dropped (None), texts are cut to a
    sensible length, and only plain slot values (text, numbers, yes/no) pass.
    """
    envelope: Dict[str, Any] = {}
    reason = payload.get(REASON)
    envelope[REASON] = reason if reason in REASONS else None
    if isinstance(reason, str) and reason not in REASONS and reason.strip():
        # Bots from before the envelope sent the person's words as the reason.
        envelope[REQUEST] = reason.strip()[:MAX_TEXT]
    for key in (SUMMARY, REQUEST, LANGUAGE, FROM_HOST, CONVERSATION_ID, HANDOFF_ID):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            envelope[key] = value.strip()[:MAX_TEXT]
    slots = payload.get(SLOTS)
    if isinstance(slots, dict):
        plain = {
            str(name)[:64]: value if not isinstance(value, str) else value[:MAX_TEXT]
            for name, value in list(slots.items())[:MAX_SLOTS]
            if isinstance(value, (str, int, float, bool))
        }
        if plain:
            envelope[SLOTS] = plain
    return envelope


def build_envelope(
    reason: str, *, summary: Optional[str] = None, slots: Optional[Mapping[str, Any]] = None,
    request: Optional[str] = None, language: str = "en",
    from_host: Optional[str] = None, conversation_id: Optional[str] = None,
) -> Dict[str, Any]:
    """Return an envelope (the keys a handoff payload carries beside handoff_host and title)."""
    if reason not in REASONS:
        raise ValueError(f"handoff reason {reason!r} is not one of: {', '.join(REASONS)}")
    fields = {
        REASON: reason, SUMMARY: summary, SLOTS: dict(slots) if slots else None, REQUEST: request,
        LANGUAGE: language, FROM_HOST: from_host, CONVERSATION_ID: conversation_id,
    }
    return read_envelope({key: value for key, value in fields.items() if value is not None})
