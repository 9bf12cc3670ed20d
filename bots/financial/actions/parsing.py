"""Understand amounts, dates and periods typed in words, without Duckling.

Amounts go through price-parser (digits, currency signs, thousands commas) with a
small number-word reader in front of it for "fifty dollars". Dates go through
dateparser; periods ("last month", "in January 2019") are read here first,
because dateparser returns one day where a search needs a range.
Every function returns None when the text can't be understood, so callers
re-ask instead of guessing.
"""
import calendar
import datetime
import re
from decimal import Decimal, InvalidOperation
from typing import List, Optional, Text, Tuple

import dateparser
from price_parser import Price

# Card payments may name an amount by what is owed instead of a number.
MINIMUM = "minimum"
FULL = "full"

Period = Tuple[datetime.date, datetime.date]

_MINIMUM_WORDS = re.compile(r"\b(min|minimum|least)\b", re.IGNORECASE)
_FULL_WORDS = re.compile(
    r"\b(full|whole|entire|total|everything|all of it|statement balance|current balance|"
    r"outstanding)\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(r"(^|[\s$(])-\s*\$?\s*\d|\bminus\b|\bnegative\b", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")

_UNITS = {
    "zero": 0, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "grand": 1000}
_CURRENCY_WORDS = re.compile(r"\b(?:dollars?|bucks|usd)\b")


def _word_number(text: Text) -> Optional[int]:
    """Return the whole number spelled in ``text`` ("two hundred and five"), or None.

    Words that are not numbers ("send", "about") are skipped; "a" counts as one
    only before a scale ("a hundred"), so "a lot" is not a number.
    """
    tokens = re.findall(r"[a-z]+", text.lower())
    total = current = 0
    seen = False
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in ("a", "an"):
            if following in _SCALES:
                current, seen = 1, True
        elif token in _UNITS:
            current, seen = current + _UNITS[token], True
        elif token == "hundred":
            current, seen = (current or 1) * 100, True
        elif token in _SCALES:
            total, current, seen = total + (current or 1) * _SCALES[token], 0, True
    return total + current if seen else None


def _words_to_number(text: Text) -> Optional[Decimal]:
    """Return the amount spelled in words ("fifty dollars and ten cents"), or None."""
    parts = _CURRENCY_WORDS.split(text.lower(), maxsplit=1)
    dollars = _word_number(parts[0])
    cents_text = parts[1] if len(parts) > 1 else ""
    cents = _word_number(cents_text) if re.search(r"\bcents?\b", cents_text) else None
    if dollars is None:
        return None
    return Decimal(dollars) + (Decimal(cents) / 100 if cents else 0)


def parse_amount(text: Text) -> Optional[Decimal]:
    """Return the positive amount of money in ``text`` ("$50", "fifty dollars"), or None.

    Negative amounts, zero and text without any number ("a lot") give None.
    """
    text = (text or "").strip()
    if not text or _NEGATIVE.search(text):
        return None
    if _HAS_DIGIT.search(text):
        # "50k" and "2 grand" are how people write thousands.
        scaled = re.search(r"(\d+(?:\.\d+)?)\s*(k|grand|thousand)\b", text, re.IGNORECASE)
        if scaled:
            amount: Optional[Decimal] = Decimal(scaled.group(1)) * 1000
        else:
            amount = Price.fromstring(text, decimal_separator=".").amount
    else:
        amount = _words_to_number(text)
    if amount is None:
        return None
    try:
        amount = Decimal(amount).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    return amount if amount > 0 else None


def parse_card_amount(text: Text) -> Optional[Tuple[Text, Optional[Decimal]]]:
    """Return how much to pay on a card: (MINIMUM, None), (FULL, None) or ("amount", value).

    Checks for the words "minimum" and "full balance" before reading a number,
    since "the minimum balance" has no number in it.
    """
    text = (text or "").strip()
    if not text:
        return None
    if _MINIMUM_WORDS.search(text) and not _HAS_DIGIT.search(text):
        return MINIMUM, None
    if _FULL_WORDS.search(text) and not _HAS_DIGIT.search(text):
        return FULL, None
    amount = parse_amount(text)
    return ("amount", amount) if amount is not None else None


def format_amount(amount: Decimal) -> Text:
    """Return ``amount`` the way the bot says it back, e.g. ``$1,200.50``."""
    return "${:,.2f}".format(amount)


def amount_from_slot(value: Optional[Text]) -> Optional[Decimal]:
    """Return the Decimal of a slot value this module formatted, e.g. "$1,200.50"."""
    if not value:
        return None
    try:
        return Decimal(str(value).replace("$", "").replace(",", ""))
    except InvalidOperation:
        return None


_WEEKDAYS = [name.lower() for name in calendar.day_name]
_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})
_FILLER = re.compile(r"\b(on|in|for|during|the|of|please|by|at|over)\b", re.IGNORECASE)


def _clean(text: Text) -> Text:
    text = re.sub(r"\s+", " ", text.strip().lower())
    # Politeness around an answer ("last month please") is not part of the date.
    return re.sub(r"(?:,? please)?[?!.,]*$", "", text).strip()


def _weekday_date(text: Text, today: datetime.date) -> Optional[datetime.date]:
    """Return the date of "next friday" / "this friday" / "last friday", which dateparser lacks."""
    match = re.fullmatch(r"(?:on )?(next|this|coming|last|past|previous) (\w+)", text)
    if not match or match.group(2) not in _WEEKDAYS:
        return None
    which, target = match.group(1), _WEEKDAYS.index(match.group(2))
    if which in ("last", "past", "previous"):
        back = (today.weekday() - target) % 7 or 7
        return today - datetime.timedelta(days=back)
    ahead = (target - today.weekday()) % 7
    if which == "next" and ahead == 0:
        ahead = 7
    return today + datetime.timedelta(days=ahead)


def parse_date(
    text: Text, today: datetime.date, prefer: Text = "future"
) -> Optional[datetime.date]:
    """Return the single day ``text`` names ("tomorrow", "next Friday", "June 3"), or None.

    ``prefer`` ("future" or "past") settles dates without a year or week, as
    dateparser's PREFER_DATES_FROM does.
    """
    cleaned = _clean(text or "")
    if not cleaned or not re.search(r"[a-z0-9]", cleaned):
        return None
    weekday = _weekday_date(cleaned, today)
    if weekday is not None:
        return weekday
    base = datetime.datetime.combine(today, datetime.time(12))
    parsed = dateparser.parse(
        cleaned,
        languages=["en"],
        settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": prefer, "STRICT_PARSING": False},
    )
    if parsed is None:
        parsed = dateparser.parse(
            _FILLER.sub(" ", cleaned).strip(),
            languages=["en"],
            settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": prefer},
        )
    return parsed.date() if parsed is not None else None


def _month_period(year: int, month: int) -> Period:
    last = calendar.monthrange(year, month)[1]
    return datetime.date(year, month, 1), datetime.date(year, month, last)


def _relative_period(text: Text, today: datetime.date) -> Optional[Period]:
    """Return the period of "last month", "this week", "past 30 days" and the like."""
    if re.fullmatch(r"(last|previous|past) month", text):
        year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
        return _month_period(year, month)
    if re.fullmatch(r"(this|current) month|month to date|so far this month", text):
        return today.replace(day=1), today
    if re.fullmatch(r"(last|previous|past) week", text):
        start = today - datetime.timedelta(days=today.weekday() + 7)
        return start, start + datetime.timedelta(days=6)
    if re.fullmatch(r"(this|current) week", text):
        return today - datetime.timedelta(days=today.weekday()), today
    if re.fullmatch(r"(last|previous|past) year", text):
        return datetime.date(today.year - 1, 1, 1), datetime.date(today.year - 1, 12, 31)
    if re.fullmatch(r"(this|current) year|year to date|so far this year", text):
        return datetime.date(today.year, 1, 1), today
    match = re.fullmatch(r"(?:the )?(?:last|past|previous) (\d+|\w+) (day|week|month)s?", text)
    if match:
        count = int(match.group(1)) if match.group(1).isdigit() else _UNITS.get(match.group(1))
        if not count:
            return None
        days = {"day": 1, "week": 7, "month": 30}[match.group(2)] * count
        return today - datetime.timedelta(days=days), today
    return None


def _named_month_period(text: Text, today: datetime.date) -> Optional[Period]:
    """Return the whole month of "January 2019" or "in March" (the latest March so far)."""
    match = re.fullmatch(r"([a-z]+)(?: of)?(?: (\d{4}))?", text)
    if not match or match.group(1) not in _MONTHS:
        return None
    month = _MONTHS[match.group(1)]
    if match.group(2):
        year = int(match.group(2))
    else:
        year = today.year if month <= today.month else today.year - 1
    return _month_period(year, month)


def parse_period(text: Text, today: datetime.date) -> Optional[Period]:
    """Return the (first, last) days ``text`` covers, e.g. "last month" or "in January 2019".

    A single day ("yesterday", "May 3") is a period of one day; "from X to Y"
    and "between X and Y" give the span. Periods that start after ``today``
    are refused: there are no transactions there yet.
    """
    cleaned = _clean(text or "")
    cleaned = re.sub(r"^(?:in|for|during|over|from|on|of) (?=\S)", "", cleaned)
    if not cleaned:
        return None
    period = _relative_period(cleaned, today) or _named_month_period(cleaned, today)
    if period is None:
        span = re.fullmatch(r"(?:from |between )?(.+?) (?:to|until|till|through|and|-) (.+)", cleaned)
        if span:
            first = parse_date(span.group(1), today, prefer="past")
            last = parse_date(span.group(2), today, prefer="past")
            if first is not None and last is not None and first <= last:
                period = first, last
    if period is None:
        since = re.fullmatch(r"since (.+)", cleaned)
        if since:
            first = parse_date(since.group(1), today, prefer="past")
            period = (first, today) if first is not None and first <= today else None
    if period is None:
        day = parse_date(cleaned, today, prefer="past")
        period = (day, day) if day is not None else None
    if period is None or period[0] > today:
        return None
    return period


def describe_period(period: Period) -> Text:
    """Return a period as a person reads it: "from Apr 1, 2024 to Apr 30, 2024" or "on Tue, May 14, 2024"."""
    first, last = period
    if first == last:
        return "on " + describe_date(first)
    return "from {} to {}".format(_short_date(first), _short_date(last))


def describe_date(day: datetime.date) -> Text:
    """Return a day as a person reads it, e.g. "Fri, May 17, 2024"."""
    return "{}, {}".format(day.strftime("%a"), _short_date(day))


def _short_date(day: datetime.date) -> Text:
    return "{} {}, {}".format(day.strftime("%b"), day.day, day.year)


def period_to_slot(period: Period) -> Text:
    """Return the slot form of a period: two ISO dates joined by a slash."""
    return "{}/{}".format(period[0].isoformat(), period[1].isoformat())


def period_from_slot(value: Optional[Text]) -> Optional[Period]:
    """Return the period stored by :func:`period_to_slot`, or None."""
    parts: List[Text] = str(value or "").split("/")
    if len(parts) != 2:
        return None
    try:
        return datetime.date.fromisoformat(parts[0]), datetime.date.fromisoformat(parts[1])
    except ValueError:
        return None
