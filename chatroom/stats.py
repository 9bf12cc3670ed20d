"""Handoff figures for a period: by reason code, by route, over time, and how people fared at the desks.

Every figure is a table (columns and rows) so each one exports alike, as JSON
or CSV. Reasons are the handoff envelope's codes as stored with each switch;
anything else (no code, or one outside the vocabulary) counts as
"unspecified" — never a guess from what the person typed.

Figures about waiting for a human (first reply, abandonment) leave out stays an
operator opened by taking a conversation over: nobody waited in those.
"""
from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handoff.config import HandoffConfig
from handoff.envelope import REASONS

from . import store

# The handoff envelope's reasons, and an operator stepping in unprompted.
REASON_CODES = (*REASONS, store.OPERATOR_TAKEOVER)
UNSPECIFIED = "unspecified"
BUCKETS = ("hour", "day")
# Periods up to this many days are charted per hour unless asked otherwise; hour bars stop at MAX_HOUR_DAYS.
HOURLY_UP_TO_DAYS = 2
MAX_HOUR_DAYS = 7
MAX_DAYS = 366
# How a stay ended is the part of its outcome before ":" (handed_back:financial, left:helpdesk, closed, ...).
HANDED_BACK = "handed_back"
SUPERSEDED = "superseded"


class PeriodError(ValueError):
    """A period the figures cannot be computed for; the message names the parameter and the fix."""


@dataclass(frozen=True)
class Period:
    """The window [since, until) and how its timeline is cut: per hour or per day, in a time zone."""

    since: float
    until: float
    zone: ZoneInfo
    bucket: str

    def to_json(self) -> dict[str, Any]:
        return {
            "since": iso(self.since, self.zone), "until": iso(self.until, self.zone),
            "timezone": self.zone.key, "bucket": self.bucket,
        }


def read_period(args: dict[str, str], now: float) -> Period:
    """Return the period asked for with ?days=30&by=hour|day&tz=Europe/Berlin (every one optional)."""
    try:
        days = float(args.get("days", "30"))
    except ValueError:
        raise PeriodError("'days' must be a number.") from None
    if not 0 < days <= MAX_DAYS:
        raise PeriodError(f"'days' must be more than 0 and at most {MAX_DAYS}.")
    name = args.get("tz") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(
            f"'tz' must be a time zone name such as Europe/Berlin or UTC, not {name!r}."
        ) from None
    bucket = args.get("by") or ("hour" if days <= HOURLY_UP_TO_DAYS else "day")
    if bucket not in BUCKETS:
        raise PeriodError(f"'by' must be one of: {', '.join(BUCKETS)}.")
    if bucket == "hour" and days > MAX_HOUR_DAYS:
        raise PeriodError(f"Per hour covers at most {MAX_HOUR_DAYS} days; ask for by=day.")
    return Period(now - days * 86400, now, zone, bucket)


UTC = ZoneInfo("UTC")


def iso(at: float | None, zone: ZoneInfo = UTC) -> str:
    return datetime.fromtimestamp(at, zone).isoformat(timespec="seconds") if at else ""


def percentile(values: list[float], share: float) -> float | None:
    """Return the nearest-rank percentile (share 0.5 = median), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def seconds(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def reason_code(code: str | None) -> str:
    return code if code in REASON_CODES else UNSPECIFIED


def ending(stay: store.Stay) -> str:
    return (stay.outcome or "").partition(":")[0]


def bucket_start(at: float, period: Period) -> datetime:
    local = datetime.fromtimestamp(at, period.zone)
    if period.bucket == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_starts(period: Period) -> list[datetime]:
    """Return the start of every hour or day the period touches, in its time zone (DST included)."""
    starts = []
    start = bucket_start(period.since, period)
    while start.timestamp() < period.until:
        starts.append(start)
        if period.bucket == "hour":
            start = bucket_start(start.timestamp() + 3600, period)
        else:
            start = datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=period.zone)
    return starts


def by_reason(switches: list[store.Switch]) -> list[dict[str, Any]]:
    counts = Counter(reason_code(switch.reason_code) for switch in switches)
    return [{"reason": reason, "count": count}
            for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def by_route(switches: list[store.Switch], config: HandoffConfig) -> list[dict[str, Any]]:
    counts = Counter((switch.from_host, switch.to_host) for switch in switches)

    def title(host_id: str) -> str:
        host = config.find_host(host_id)
        return host.title if host else host_id

    return [
        {"from": from_host, "to": to_host, "label": f"{title(from_host)} → {title(to_host)}", "count": count}
        for (from_host, to_host), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def over_time(switches: list[store.Switch], config: HandoffConfig, period: Period) -> list[dict[str, Any]]:
    """Return every hour or day of the period with its handoffs, and how many went to a human desk."""
    desks = {host.id for host in config.hosts if host.kind == "parlant"}
    handoffs: Counter[str] = Counter()
    to_human: Counter[str] = Counter()
    for switch in switches:
        key = bucket_start(switch.at, period).isoformat()
        handoffs[key] += 1
        to_human[key] += switch.to_host in desks
    keys = [start.isoformat() for start in bucket_starts(period)]
    return [{"start": key, "handoffs": handoffs[key], "to_human": to_human[key]} for key in keys]


def first_reply(waited: list[store.Stay]) -> dict[str, Any]:
    waits = [stay.first_reply_at - stay.opened_at for stay in waited if stay.first_reply_at is not None]
    return {
        "stays": len(waited), "answered": len(waits),
        "median_seconds": seconds(percentile(waits, 0.5)), "p90_seconds": seconds(percentile(waits, 0.9)),
    }


def abandonment(waited: list[store.Stay]) -> dict[str, Any]:
    """Stays that ended before any human reply: the person left, it was closed, superseded or started over.

    A hand-back by an operator is their decision, not the person giving up.
    """
    abandoned = [
        stay for stay in waited
        if stay.closed_at is not None and stay.first_reply_at is None and ending(stay) != HANDED_BACK
    ]
    return {"stays": len(waited), "abandoned": len(abandoned), "rate": rate(len(abandoned), len(waited))}


def bounce(stays: list[store.Stay]) -> dict[str, Any]:
    """Desk stays an operator handed back to a bot (bot → human → bot), among those that ended.

    A superseded stay did not end the person's time at the desk (another stay took over), so it is left out.
    """
    ended = [stay for stay in stays if stay.closed_at is not None and ending(stay) != SUPERSEDED]
    handed_back = [stay for stay in ended if ending(stay) == HANDED_BACK]
    return {"ended": len(ended), "handed_back": len(handed_back), "rate": rate(len(handed_back), len(ended))}


def containment(connection: store.Connection, period: Period) -> dict[str, Any]:
    """Conversations started in the period (the person wrote something) that never reached a human desk."""
    total, contained = store.count_contained(connection, period.since, period.until)
    return {"conversations": total, "contained": contained, "rate": rate(contained, total)}


def stay_rows(stays: list[store.Stay], period: Period) -> list[dict[str, Any]]:
    return [
        {
            "conversation_id": stay.conversation_id, "desk": stay.host_id, "from_host": stay.from_host,
            "reason": stay.reason, "reason_code": reason_code(stay.reason_code),
            "opened_at": iso(stay.opened_at, period.zone),
            "first_reply_seconds": seconds(
                stay.first_reply_at - stay.opened_at if stay.first_reply_at is not None else None
            ),
            "taken_by": stay.taken_by, "closed_at": iso(stay.closed_at, period.zone), "outcome": stay.outcome,
        }
        for stay in stays
    ]


def compute(connection: store.Connection, config: HandoffConfig, period: Period) -> dict[str, Any]:
    """Return every figure for the period, each a list of rows or one row."""
    switches = store.list_switches(connection, period.since, period.until)
    stays = store.list_stays_between(connection, period.since, period.until)
    waited = [stay for stay in stays if stay.reason_code != store.OPERATOR_TAKEOVER]
    return {
        **period.to_json(),
        "handoffs": len(switches),
        "reasons": by_reason(switches),
        "routes": by_route(switches, config),
        "timeline": over_time(switches, config, period),
        "first_reply": first_reply(waited),
        "abandonment": abandonment(waited),
        "bounce": bounce(stays),
        "containment": containment(connection, period),
        "stays": stay_rows(stays, period),
    }


# Each figure's columns, in export order.
FIGURES = {
    "reasons": ("reason", "count"),
    "routes": ("from", "to", "label", "count"),
    "timeline": ("start", "handoffs", "to_human"),
    "first_reply": ("stays", "answered", "median_seconds", "p90_seconds"),
    "abandonment": ("stays", "abandoned", "rate"),
    "bounce": ("ended", "handed_back", "rate"),
    "containment": ("conversations", "contained", "rate"),
    "stays": (
        "conversation_id", "desk", "from_host", "reason", "reason_code", "opened_at", "first_reply_seconds",
        "taken_by", "closed_at", "outcome",
    ),
}


def figure_rows(figures: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Return one figure as rows (a figure that is one row becomes a list of one)."""
    value = figures[name]
    return value if isinstance(value, list) else [value]


def to_csv(name: str, rows: list[dict[str, Any]]) -> str:
    """Return a figure's rows as CSV, its columns as the header."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = FIGURES[name]
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_safe(row[column]) for column in columns])
    return out.getvalue()


def csv_safe(value: Any) -> Any:
    """Return a cell a spreadsheet shows as it is: text starting with =, +, - or @ would run as a formula."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return f"'{value}"
    return value
