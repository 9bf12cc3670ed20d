"""The handoff envelope: only known reasons and plain values pass, and personal data is masked."""
from __future__ import annotations

import pytest

from handoff.envelope import (
    OUT_OF_DOMAIN,
    REASONS,
    build_envelope,
    mask,
    mask_text,
    read_envelope,
)


@pytest.mark.parametrize(("text", "masked"), [
    ("mail me at jane.doe@example.com please", "mail me at j***@e***.com please"),
    ("card 4111 1111 1111 1234 is blocked", "card •••• 1234 is blocked"),
    ("account 12345678", "account •••• 5678"),
    ("IBAN-ish 1234-5678-9012", "IBAN-ish •••• 9012"),
    ("pay 50 dollars on 12/05", "pay 50 dollars on 12/05"),
    ("call 555 1234", "call 555 1234"),
])
def test_emails_and_long_numbers_are_masked_and_nothing_else(text, masked):
    assert mask_text(text) == masked


def test_mask_covers_the_summary_the_request_and_slot_values():
    envelope = build_envelope(
        OUT_OF_DOMAIN, summary="Opening an incident for bob@corp.io", request="my card 4000123412341234",
        slots={"email": "bob@corp.io", "priority": "high", "amount": 12.5},
    )
    masked = mask(envelope)
    assert masked["summary"] == "Opening an incident for b***@c***.io"
    assert masked["request"] == "my card •••• 1234"
    assert masked["slots"] == {"email": "b***@c***.io", "priority": "high", "amount": 12.5}
    assert envelope["slots"]["email"] == "bob@corp.io", "the original is left alone"


def test_only_reasons_from_the_vocabulary_are_kept_and_an_old_free_text_reason_becomes_the_request():
    assert read_envelope({"reason": "asked_for_human"})["reason"] == "asked_for_human"
    old = read_envelope({"reason": "I want a person"})
    assert old["reason"] is None and old["request"] == "I want a person"
    with pytest.raises(ValueError, match="not one of"):
        build_envelope("because")
    assert len(REASONS) == 6


def test_only_plain_slot_values_pass_and_texts_are_cut():
    envelope = read_envelope({
        "reason": "named_target", "summary": "x" * 5000,
        "slots": {"email": "a@b.co", "nested": {"no": 1}, "items": [1, 2], "confirmed": True},
    })
    assert len(envelope["summary"]) == 600
    assert envelope["slots"] == {"email": "a@b.co", "confirmed": True}
