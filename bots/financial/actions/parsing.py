"""Understand amounts, dates and periods typed in words, without Duckling.

Amounts: text2num turns number words into digits ("twelve fifty" -> "12 50"),
a few patterns read spoken prices, cents and scales, and price-parser reads
the rest (currency signs, thousands commas). Dates go through
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
from text_to_num import alpha2digit

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

_CURRENCY = r"(?:dollars?|bucks|usd)"
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
# After number words became digits: "1.5 1000000" (1.5 million), "2 and a half 1000".
_SCALED = re.compile(
    r"(?:(?P<whole>{n})(?P<half>\s+and\s+a\s+half)?|(?P<only_half>half(?:\s+an?)?))"
    r"(?:\s+(?P<scale>1000|1000000|1000000000)|\s*(?P<word>k|grand|thousand|million|billion))\b".format(n=_NUMBER)
)
# "12 dollars 50", "12 dollars and 50 cents".
_DOLLARS_AND_CENTS = re.compile(
    r"(?P<dollars>{n})\s*{c}\s*(?:and\s+)?(?P<cents>\d{{1,2}})\b(?:\s*cents?\b)?".format(
        n=_NUMBER, c=_CURRENCY
    )
)
# "12 50" said for twelve fifty: dollars then cents, as prices are spoken.
_SPOKEN_PRICE = re.compile(r"^\D*?(?<![\d.,])(?P<dollars>\d{1,2})\s+(?P<cents>\d{2})(?![\d.,])\D*$")
_CENTS_ONLY = re.compile(r"^\D*?(?<![\d.,])(?P<cents>\d{1,3})\s*(?:cents?|c)\b\D*$")
_SCALE_VALUES = {
    "1000": 1000, "k": 1000, "grand": 1000, "thousand": 1000,
    "1000000": 1000000, "million": 1000000, "1000000000": 1000000000, "billion": 1000000000,
}


def words_to_digits(text: Text) -> Text:
    """Return ``text`` lower-cased with spelled numbers as digits ("twelve fifty" -> "12 50").

    The number words are read by text2num; "a hundred" keeps its article as "a 100".
    """
    converted = alpha2digit(text.lower().replace("\u2019", "'"), "en", threshold=0)
    # "a 100", "an 800": the article is the number one, not a word to keep.
    return re.sub(r"\b(?:a|an|one)\s+(?=\d)", "", converted)


def _to_decimal(digits: Text) -> Optional[Decimal]:
    try:
        return Decimal(digits.replace(",", ""))
    except InvalidOperation:
        return None


def _read_amount(text: Text) -> Optional[Decimal]:
    """Return the amount in ``text`` after number words became digits, or None."""
    scaled = _SCALED.search(text)
    if scaled:
        if scaled.group("only_half"):
            base: Optional[Decimal] = Decimal("0.5")
        else:
            base = _to_decimal(scaled.group("whole"))
            if base is not None and scaled.group("half"):
                base += Decimal("0.5")
        scale = _SCALE_VALUES[scaled.group("scale") or scaled.group("word")]
        return base * scale if base is not None else None
    pair = _DOLLARS_AND_CENTS.search(text)
    if pair:
        dollars = _to_decimal(pair.group("dollars"))
        return dollars + Decimal(pair.group("cents")) / 100 if dollars is not None else None
    spoken = _SPOKEN_PRICE.match(text)
    if spoken and not re.search(r"\d\s*(?:dollars?|bucks|usd)\s*$", text):
        return Decimal(spoken.group("dollars")) + Decimal(spoken.group("cents")) / 100
    cents = _CENTS_ONLY.match(text)
    if cents:
        return Decimal(cents.group("cents")) / 100
    if not _HAS_DIGIT.search(text):
        return None
    return Price.fromstring(text, decimal_separator=".").amount


def parse_amount(text: Text) -> Optional[Decimal]:
    """Return the positive amount of money in ``text`` ("$50", "twelve fifty", "one point five"), or None.

    Spoken prices read as dollars and cents ("three fifty" is 3.50), "50 cents"
    is 0.50, and "one million dollars" is 1000000. Negative amounts, zero and text
    without a number ("a lot") give None, so the form asks again.
    """
    text = (text or "").strip()
    if not text or _NEGATIVE.search(text):
        return None
    amount = _read_amount(words_to_digits(text))
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
    match = re.fullmatch(
        r"(?:the )?(?:last|past|previous) (\d+|\w+) (day|week|month)s?", words_to_digits(text)
    )
    if match:
        count = int(match.group(1)) if match.group(1).isdigit() else None
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
