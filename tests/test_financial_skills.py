"""The Financial Assistant's skills end to end: the chatroom, the real bot, its profile database."""
from __future__ import annotations

import calendar
import datetime
import sqlite3
from contextlib import closing
from decimal import Decimal

import pytest

from tests.stack import Person, Stack

pytestmark = pytest.mark.stack

PROFILES_DB = "financial-profiles.sqlite"


def to_financial(stack: Stack) -> Person:
    """Return a person the entry host (helpdesk) has handed to the Financial Assistant."""
    person = stack.person()
    person.start()
    person.say("can I talk to someone else?")
    person.press("Financial Assistant")
    assert person.host == "financial"
    return person


def query(stack: Stack, sql: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(stack.state_dir / PROFILES_DB)) as db:
        return db.execute(sql, params).fetchall()


def sender(stack: Stack, person: Person) -> str:
    return stack.tracker("financial", person.conversation_id)["sender_id"]


def balances(stack: Stack, person: Person) -> dict[str, Decimal]:
    rows = query(
        stack, "SELECT name, balance_cents FROM financial_accounts WHERE sender_id = ?", sender(stack, person)
    )
    assert rows, "the profile should exist once the person reached the Financial Assistant"
    return {name: Decimal(cents) / 100 for name, cents in rows}


def recipient(stack: Stack, person: Person) -> str:
    rows = query(
        stack, "SELECT name FROM financial_recipients WHERE sender_id = ? ORDER BY name",
        sender(stack, person),
    )
    return rows[0][0]


def said(person: Person) -> str:
    return " ".join(person.texts("bot"))


def money(amount: Decimal) -> str:
    return "${:,.2f}".format(amount)


def send_money(person: Person, name: str, amount: str) -> None:
    person.say("I want to send money to someone")
    person.say(name.split()[0])
    person.say(amount)


def test_transfer_reduces_the_bank_balance_and_the_balance_reply_shows_it(stack: Stack):
    person = to_financial(stack)
    before = balances(stack, person)
    name = recipient(stack, person)

    send_money(person, name, "$45")
    assert "$45.00" in said(person) and name in said(person)
    person.press("Yes")

    after = balances(stack, person)
    assert after["bank"] == before["bank"] - Decimal("45")
    assert {k: v for k, v in after.items() if k != "bank"} == {k: v for k, v in before.items() if k != "bank"}
    person.say("what's my bank balance?")
    assert money(after["bank"]) in said(person)


def pay_card(person: Person, request: str, amount: str, when: str) -> None:
    """Answer the card payment form and confirm."""
    for text in (request, amount, when):
        person.say(text)
    person.press("Yes")


def test_paying_a_card_today_reduces_its_balance_and_the_bank_balance(stack: Stack):
    person = to_financial(stack)
    before = balances(stack, person)

    pay_card(person, "I want to pay my emblm card", "fifty dollars", "today")
    assert said(person).startswith("Done: $50.00 paid on your Emblem card today.")

    after = balances(stack, person)
    assert after["emblem"] == before["emblem"] - 50
    assert after["bank"] == before["bank"] - 50


def test_a_card_payment_dated_later_is_scheduled_and_changes_no_balance_yet(stack: Stack):
    person = to_financial(stack)
    before = balances(stack, person)

    pay_card(person, "I'd like to pay the iron bank card", "twelve fifty", "tomorrow")

    assert said(person).startswith("Scheduled: $12.50 will go to your Iron Bank card on ")
    assert balances(stack, person) == before
    [(card, cents, state)] = query(
        stack, "SELECT card, amount_cents, state FROM financial_scheduled_payments WHERE sender_id = ?",
        sender(stack, person),
    )
    assert (card, cents, state) == ("iron bank", 1250, "scheduled")


def test_cancelling_a_transfer_changes_nothing(stack: Stack):
    person = to_financial(stack)
    before = balances(stack, person)

    send_money(person, recipient(stack, person), "20.50")
    person.press("No")

    assert "cancelled" in said(person)
    assert balances(stack, person) == before


def test_amount_above_the_balance_is_refused_and_asked_again(stack: Stack):
    person = to_financial(stack)
    before = balances(stack, person)

    send_money(person, recipient(stack, person), "$1,000,000")

    assert money(before["bank"]) in said(person)
    assert stack.tracker("financial", person.conversation_id)["slots"]["requested_slot"] == "amount-of-money"


def test_search_over_last_month_reports_the_stored_total(stack: Stack):
    person = to_financial(stack)
    today = datetime.date.today()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    first = datetime.date(year, month, 1)
    last = datetime.date(year, month, calendar.monthrange(year, month)[1])
    (cents,) = query(
        stack,
        "SELECT COALESCE(SUM(amount_cents), 0) FROM financial_transactions"
        " WHERE sender_id = ? AND kind = 'spend' AND day BETWEEN ? AND ?",
        sender(stack, person), first.isoformat(), last.isoformat(),
    )[0]

    person.say("search my transactions")
    person.say("spending")
    person.say("last month")
    person.press("Yes")

    assert money(Decimal(cents) / 100) in said(person)


def test_balance_question_inside_a_form_is_answered_and_the_form_resumes(stack: Stack):
    person = to_financial(stack)
    person.say("I want to send money to someone")

    person.say("what's my balance?")

    assert money(balances(stack, person)["bank"]) in said(person)
    assert person.texts("bot")[-1] == "Who should receive the money?"
    tracker = stack.tracker("financial", person.conversation_id)
    assert tracker["active_loop"]["name"] == "transfer_money_form"


def test_switching_to_a_card_payment_and_back_to_the_transfer(stack: Stack):
    person = to_financial(stack)
    before = balances(stack, person)
    name = recipient(stack, person)
    person.say("I want to send money to someone")
    person.say(name.split()[0])

    person.say("actually I want to pay my credit card")
    assert "pay a credit card instead" in said(person)
    person.press("Yes")
    person.say("iron bank")
    person.say("$30")
    person.say("today")
    person.press("Yes")
    assert "go back to the money transfer" in said(person)
    person.press("Yes")
    assert person.texts("bot")[-1] == f"How much should I send to {name}?"
    person.say("$10")
    person.press("Yes")

    after = balances(stack, person)
    assert after["iron bank"] == before["iron bank"] - 30
    assert after["bank"] == before["bank"] - 40
    assert f"is on its way to {name}" in said(person)


def test_declining_to_switch_keeps_the_current_form(stack: Stack):
    person = to_financial(stack)
    person.say("how much did I spend?")
    person.say("pay my credit card")
    person.press("No")

    tracker = stack.tracker("financial", person.conversation_id)
    assert tracker["active_loop"]["name"] == "transaction_search_form"
    assert person.texts("bot")[-1].startswith("Over which period?")


def test_two_conversations_see_separate_profiles(stack: Stack):
    first = to_financial(stack)
    second = to_financial(stack)
    assert sender(stack, first) != sender(stack, second)
    second_before = balances(stack, second)

    send_money(first, recipient(stack, first), "$15")
    first.press("Yes")

    assert balances(stack, second) == second_before
    second.say("what's my bank balance?")
    assert money(second_before["bank"]) in said(second)


def test_amounts_in_words_are_read_before_the_confirmation(stack: Stack):
    person = to_financial(stack)
    name = recipient(stack, person)

    send_money(person, name, "three fifty")

    assert f"Shall I send $3.50 to {name}?" in person.texts("bot")
    person.press("No")


def test_an_amount_that_cannot_be_read_is_asked_for_again(stack: Stack):
    person = to_financial(stack)

    send_money(person, recipient(stack, person), "a fair bit")

    assert "That isn't an amount I can send." in said(person)
    assert stack.tracker("financial", person.conversation_id)["slots"]["requested_slot"] == "amount-of-money"


def test_transfer_me_gets_a_clarifying_question_and_its_buttons_lead_on(stack: Stack):
    person = to_financial(stack)

    person.say("transfer me please")

    assert "send money to someone, or shall I transfer you" in said(person)
    assert list(person.buttons()) == ["Send money", "Someone else"]
    person.press("Someone else")
    assert "Helpdesk Assistant" in list(person.buttons())


def test_switching_three_deep_comes_back_through_each_task(stack: Stack):
    person = to_financial(stack)
    before = balances(stack, person)
    name = recipient(stack, person)
    person.say("I want to pay my credit card")
    person.say("justice bank")
    person.say("I need to send money to someone")
    person.press("Yes")
    person.say(name.split()[0])
    person.say("how much did I spend last week?")
    person.press("Yes")
    person.press("Yes")
    assert "go back to the money transfer" in said(person)
    person.press("Yes")
    assert person.texts("bot")[-1] == f"How much should I send to {name}?"
    person.say("$7")
    person.press("Yes")
    assert "go back to paying your credit card" in said(person)
    person.press("Yes")
    assert person.texts("bot")[-1].startswith("How much would you like to pay on your justice bank card?")
    person.say("$9")
    person.say("today")
    person.press("Yes")

    after = balances(stack, person)
    assert after["justice bank"] == before["justice bank"] - 9
    assert after["bank"] == before["bank"] - 16


def test_helpdesk_request_offers_the_helpdesk_first(stack: Stack):
    person = to_financial(stack)

    person.say("my password expired")

    assert "Helpdesk Assistant" in said(person)
    assert list(person.buttons())[0] == "Helpdesk Assistant"
    person.press("Helpdesk Assistant")
    assert person.host == "helpdesk"


def test_asking_for_the_helpdesk_by_name_hands_off_directly(stack: Stack):
    person = to_financial(stack)

    person.say("take me to the helpdesk")

    assert person.host == "helpdesk"
