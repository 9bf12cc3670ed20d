"""Opening hours of a human desk, from ``hours:`` on a ``kind: parlant`` host in handoff_config.yml.

```yaml
hours:
  timezone: Europe/Berlin            # an IANA time zone name
  open:                              # the days and times the desk is staffed; any other time it is closed
    mon-fri: "09:00-17:00"           # a range of days
    sat: "10:00-12:00, 13:00-15:00"  # several spans in one day
    sun: closed                      # (days not named are closed too)
```

A key is a day (``mon`` ... ``sun``), a range (``mon-fri``; ``fri-mon`` runs over the
week's end) or a list (``sat,sun``); each day may be named once. A span ends on
the day it starts: ``24:00`` is that day's midnight, and a night shift is two
spans, ``fri: "22:00-24:00"`` and ``sat: "00:00-06:00"``.

Imported by the action servers (Python 3.8-3.10) as well as the chatroom, so it
stays free of modern-only syntax.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Any, Dict, List, Optional, Tuple

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # Python 3.8
    from backports.zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # type: ignore[no-redef]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
KEYS = ("timezone", "open")
CLOSED = "closed"
TIME = re.compile(r"(\d{1,2}):(\d{2})\Z")
DAY_MINUTES = 24 * 60
FORMAT_HINT = 'use "09:00-17:00", several spans as "09:00-12:00, 13:00-17:00", or closed'
DAYS_HINT = "use mon, tue, wed, thu, fri, sat or sun, a range like mon-fri, or a list like sat,sun"

# A span of opening time within one day, in minutes after midnight: [start, end).
Span = Tuple[int, int]


class HoursError(ValueError):
    """Opening hours that cannot be used; the message names the key and the fix."""


def now() -> datetime:
    """Return the current time (tests freeze the clock here)."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Hours:
    """A desk's weekly opening times in its own time zone."""

    timezone: str
    # Seven tuples of spans, Monday first.
    week: Tuple[Tuple[Span, ...], ...]

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def is_open(self, at: Optional[datetime] = None) -> bool:
        """Tell whether the desk is open at ``at`` (default: now)."""
        local = (at or now()).astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.week[local.weekday()])

    def next_opening(self, at: Optional[datetime] = None) -> Optional[datetime]:
        """Return when the desk next opens, in its time zone; None while it is open."""
        at = at or now()
        if self.is_open(at):
            return None
        local = at.astimezone(self.zone)
        # Every week has a span (see parse_hours), so one is found within eight days.
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            for start, _end in self.week[day.weekday()]:
                opening = datetime.combine(day, time(start // 60, start % 60), tzinfo=self.zone)
                if opening > local:
                    return opening
        return None

    def when(self, moment: datetime, at: Optional[datetime] = None) -> str:
        """Say when ``moment`` is, seen from ``at``: "today at 09:00 Berlin time", "on Monday at ..."."""
        local = moment.astimezone(self.zone)
        ahead = (local.date() - (at or now()).astimezone(self.zone).date()).days
        if ahead == 0:
            day = "today"
        elif ahead == 1:
            day = "tomorrow"
        else:
            day = ("next " if ahead >= 7 else "on ") + DAY_NAMES[local.weekday()]
        return f"{day} at {local:%H:%M} {self.place} time"

    @property
    def place(self) -> str:
        """Return the name people know the time zone by: its city, or UTC."""
        return self.timezone.rsplit("/", 1)[-1].replace("_", " ")

    def opens(self, at: Optional[datetime] = None) -> Optional[str]:
        """Return when a closed desk opens, in words; None while it is open."""
        at = at or now()
        opening = self.next_opening(at)
        return self.when(opening, at) if opening is not None else None


def load_zone(name: Any) -> tzinfo:
    """Return the time zone with this IANA name, or raise HoursError naming the fix."""
    if not isinstance(name, str) or not name.strip():
        raise HoursError("has no timezone (add timezone: an IANA name such as Europe/Berlin or UTC)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(
            f"timezone '{name}' is not a known time zone (use an IANA name such as Europe/Berlin or UTC)"
        ) from None


def parse_days(key: Any) -> List[int]:
    """Return the weekdays (0 = Monday) a key of ``open`` names: mon, mon-fri, sat,sun."""
    if not isinstance(key, str):
        raise HoursError(f"open has the key {key!r}, which is not a day ({DAYS_HINT})")
    days: List[int] = []
    for part in key.lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise HoursError(f"open '{key}' is not a day or a range of days ({DAYS_HINT})")
        start = DAYS.index(first)
        count = (DAYS.index(last) - start) % 7 + 1 if dash else 1
        days.extend((start + offset) % 7 for offset in range(count))
    return days


def parse_minute(text: str, key: str, value: str) -> int:
    found = TIME.match(text.strip())
    if found is None:
        raise HoursError(f"open {key} '{value}' is not a time span ({FORMAT_HINT})")
    hours, minutes = int(found.group(1)), int(found.group(2))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise HoursError(f"open {key} '{value}' has a time that does not exist ({FORMAT_HINT})")
    return hours * 60 + minutes


def parse_spans(key: str, value: Any) -> List[Span]:
    """Return the spans of one key's value: "09:00-17:00", "09:00-12:00, 13:00-17:00", a list, or closed."""
    if isinstance(value, str) and value.strip().lower() == CLOSED:
        return []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        parts = value
    elif isinstance(value, str):
        parts = value.split(",")
    else:
        raise HoursError(f"open {key} is {value!r}, not a time span (quote it and {FORMAT_HINT})")
    spans = []
    for part in parts:
        start_text, dash, end_text = part.partition("-")
        if not dash:
            raise HoursError(f"open {key} '{value}' is not a time span ({FORMAT_HINT})")
        start, end = parse_minute(start_text, key, value), parse_minute(end_text, key, value)
        if start >= end:
            raise HoursError(
                f"open {key} '{part.strip()}' does not end after it starts (a span ends the day it starts: "
                'for a night shift write fri: "22:00-24:00" and sat: "00:00-06:00")'
            )
        spans.append((start, end))
    spans.sort()
    for (_start, end), (next_start, _next_end) in zip(spans, spans[1:]):
        if next_start < end:
            raise HoursError(
                f"open {key} '{value}' has spans that overlap (make each start after the one before ends)"
            )
    return spans


def parse_hours(raw: Any) -> Hours:
    """Validate the ``hours:`` mapping of a host; raise HoursError naming the key and the fix."""
    if not isinstance(raw, dict):
        raise HoursError(
            'must be a mapping (e.g. hours: {timezone: Europe/Berlin, open: {mon-fri: "09:00-17:00"}})'
        )
    for key in raw:
        if key not in KEYS:
            raise HoursError(f"has unknown key '{key}' (allowed: {', '.join(KEYS)})")
    load_zone(raw.get("timezone"))
    opening = raw.get("open")
    if not isinstance(opening, dict) or not opening:
        raise HoursError(
            'has no open times (add open: {mon-fri: "09:00-17:00"}, or remove hours: to never close)'
        )
    week: Dict[int, List[Span]] = {}
    named: Dict[int, str] = {}
    for key, value in opening.items():
        for day in parse_days(key):
            if day in named:
                raise HoursError(
                    f"open names {DAYS[day]} twice (in '{named[day]}' and '{key}'; give each day once)"
                )
            named[day] = key
            week[day] = parse_spans(key, value)
    if not any(week.values()):
        raise HoursError('open has no opening time (add e.g. mon-fri: "09:00-17:00", or remove hours:)')
    return Hours(timezone=raw["timezone"], week=tuple(tuple(week.get(day, ())) for day in range(7)))


def parse_host_hours(host: Dict[str, Any], kind: str, where: str) -> Optional[Hours]:
    """Return the hours of a host's mapping (None without ``hours:``); errors start with ``where``."""
    if "hours" not in host:
        return None
    if kind != "parlant":
        raise HoursError(f"{where} has hours, which only a kind: parlant host can have (remove hours:)")
    try:
        return parse_hours(host["hours"])
    except HoursError as exc:
        raise HoursError(f"{where} hours {exc}") from None
