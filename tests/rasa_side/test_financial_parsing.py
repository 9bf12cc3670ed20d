"""Amounts, dates and periods as the Financial Assistant's forms read them."""
import datetime
from decimal import Decimal

import pytest

from tests.rasa_side.bots import load_actions

load_actions("financial")

from financial_actions.parsing import (  # noqa: E402
    FULL,
    MINIMUM,
    amount_from_slot,
    describe_period,
    format_amount,
    parse_amount,
    parse_card_amount,
    parse_date,
    parse_period,
    period_from_slot,
    period_to_slot,
)

# A Wednesday, so "next Friday" and "last week" have one right answer.
TODAY = datetime.date(2024, 5, 15)


def day(month: int, date: int, year: int = 2024) -> datetime.date:
    return datetime.date(year, month, date)


@pytest.mark.parametrize(
    "text, amount",
    [
        ("$50", "50.00"),
        ("50", "50.00"),
        ("50.25", "50.25"),
        ("$1,200.50", "1200.50"),
        ("USD 30", "30.00"),
        ("30 bucks", "30.00"),
        ("send 75 please", "75.00"),
        ("fifty dollars", "50.00"),
        ("forty-five", "45.00"),
        ("two hundred and five", "205.00"),
        ("a hundred dollars", "100.00"),
        ("twenty dollars and fifty cents", "20.50"),
        ("one thousand two hundred", "1200.00"),
        ("2 grand", "2000.00"),
        ("1.5k", "1500.00"),
    ],
)
def test_amounts_people_write_are_read(text: str, amount: str):
    assert parse_amount(text) == Decimal(amount)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "-50", "$-5", "minus 20", "negative 10", "0", "$0.00", "zero dollars",
     "a lot", "lots of money", "some", "Maria", "yes"],
)
def test_amounts_that_are_not_a_positive_number_are_refused(text: str):
    assert parse_amount(text) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the minimum balance", (MINIMUM, None)),
        ("minimum", (MINIMUM, None)),
        ("just the min payment", (MINIMUM, None)),
        ("the full balance", (FULL, None)),
        ("the whole balance", (FULL, None)),
        ("everything I owe", (FULL, None)),
        ("$80", ("amount", Decimal("80.00"))),
        ("eighty dollars", ("amount", Decimal("80.00"))),
    ],
)
def test_card_amounts_may_name_the_minimum_or_full_balance(text: str, expected):
    assert parse_card_amount(text) == expected


@pytest.mark.parametrize("text", ["", "a lot", "-20", "nothing"])
def test_card_amounts_without_meaning_are_refused(text: str):
    assert parse_card_amount(text) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("today", day(5, 15)),
        ("tomorrow", day(5, 16)),
        ("yesterday", day(5, 14)),
        ("next Friday", day(5, 17)),
        ("this friday", day(5, 17)),
        ("next Wednesday", day(5, 22)),
        ("last Friday", day(5, 10)),
        ("friday", day(5, 17)),
        ("June 3", day(6, 3)),
        ("on the 20th", day(5, 20)),
        ("3rd of June", day(6, 3)),
        ("in two days", day(5, 17)),
        ("2024-06-01", day(6, 1)),
        ("tomorrow please", day(5, 16)),
    ],
)
def test_dates_are_read_relative_to_today(text: str, expected: datetime.date):
    assert parse_date(text, TODAY) == expected


@pytest.mark.parametrize("text", ["", "asdf", "banana", "0000", "the day after never", "?!"])
def test_nonsense_dates_are_refused(text: str):
    assert parse_date(text, TODAY) is None


@pytest.mark.parametrize(
    "text, first, last",
    [
        ("last month", day(4, 1), day(4, 30)),
        ("for last month", day(4, 1), day(4, 30)),
        ("this month", day(5, 1), day(5, 15)),
        ("last week", day(5, 6), day(5, 12)),
        ("this week", day(5, 13), day(5, 15)),
        ("this year", day(1, 1), day(5, 15)),
        ("last year", day(1, 1, 2023), day(12, 31, 2023)),
        ("in January 2019", day(1, 1, 2019), day(1, 31, 2019)),
        ("January 2019", day(1, 1, 2019), day(1, 31, 2019)),
        ("in March", day(3, 1), day(3, 31)),
        ("in December", day(12, 1, 2023), day(12, 31, 2023)),
        ("the past 30 days", day(4, 15), day(5, 15)),
        ("last 3 months", day(2, 15), day(5, 15)),
        ("yesterday", day(5, 14), day(5, 14)),
        ("from March 1 to April 10", day(3, 1), day(4, 10)),
        ("since April 2", day(4, 2), day(5, 15)),
        ("last month please", day(4, 1), day(4, 30)),
    ],
)
def test_periods_are_read_as_first_and_last_day(text: str, first: datetime.date, last: datetime.date):
    assert parse_period(text, TODAY) == (first, last)


@pytest.mark.parametrize("text", ["", "blah blah", "next month", "next friday", "from April 10 to March 1"])
def test_periods_that_are_nonsense_or_in_the_future_are_refused(text: str):
    assert parse_period(text, TODAY) is None


def test_periods_survive_the_slot_round_trip_and_read_well():
    period = (day(4, 1), day(4, 30))
    assert period_from_slot(period_to_slot(period)) == period
    assert period_from_slot("not a period") is None
    assert describe_period(period) == "from Apr 1, 2024 to Apr 30, 2024"
    assert describe_period((day(5, 14), day(5, 14))) == "on Tue, May 14, 2024"


def test_amounts_survive_the_slot_round_trip():
    assert format_amount(Decimal("1200.5")) == "$1,200.50"
    assert amount_from_slot(format_amount(Decimal("1200.5"))) == Decimal("1200.50")
    assert amount_from_slot(None) is None
