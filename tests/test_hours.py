"""Desk hours (handoff/hours.py): their format in handoff_config.yml, open or closed at a frozen time."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from handoff import hours as hours_module
from handoff.config import ConfigError, load_config
from handoff.hours import Hours, parse_hours

BERLIN = hours_module.ZoneInfo("Europe/Berlin")
OFFICE = {"timezone": "Europe/Berlin", "open": {"mon-fri": "09:00-17:00", "sat": "10:00-12:00, 13:00-14:00"}}


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


# 2026-03-09 is a Monday.
MONDAY = 9


@pytest.fixture
def office() -> Hours:
    return parse_hours(OFFICE)


def test_the_weekly_times_become_spans_per_day_in_minutes(office: Hours):
    assert office.timezone == "Europe/Berlin"
    assert office.week == (
        *[((540, 1020),)] * 5,
        ((600, 720), (780, 840)),
        (),
    )


@pytest.mark.parametrize("at, is_open", [
    (berlin(2026, 3, MONDAY, 8, 59), False),
    (berlin(2026, 3, MONDAY, 9, 0), True),
    (berlin(2026, 3, MONDAY + 4, 16, 59), True),
    (berlin(2026, 3, MONDAY + 4, 17, 0), False),
    (berlin(2026, 3, MONDAY + 5, 12, 30), False),
    (berlin(2026, 3, MONDAY + 5, 13, 30), True),
    (berlin(2026, 3, MONDAY + 6, 11, 0), False),
    # 08:30 UTC is 09:30 in Berlin.
    (datetime.fromisoformat("2026-03-09T08:30:00+00:00"), True),
])
def test_the_desk_is_open_only_inside_its_hours_in_its_own_time_zone(office: Hours, at, is_open: bool):
    assert office.is_open(at) is is_open


@pytest.mark.parametrize("at, opens", [
    (berlin(2026, 3, MONDAY, 7, 0), "today at 09:00 Berlin time"),
    (berlin(2026, 3, MONDAY, 18, 0), "tomorrow at 09:00 Berlin time"),
    (berlin(2026, 3, MONDAY + 4, 20, 0), "tomorrow at 10:00 Berlin time"),
    (berlin(2026, 3, MONDAY + 5, 12, 0), "today at 13:00 Berlin time"),
    (berlin(2026, 3, MONDAY + 5, 15, 0), "on Monday at 09:00 Berlin time"),
    (berlin(2026, 3, MONDAY + 6, 23, 59), "tomorrow at 09:00 Berlin time"),
    (berlin(2026, 3, MONDAY, 10, 0), None),
])
def test_a_closed_desk_says_when_it_opens(office: Hours, at: datetime, opens: str | None):
    assert office.opens(at) == opens


def test_the_next_opening_is_a_time_in_the_desks_zone(office: Hours):
    opening = office.next_opening(berlin(2026, 3, MONDAY + 5, 15, 0))
    assert opening.isoformat() == "2026-03-16T09:00:00+01:00"
    assert office.next_opening(berlin(2026, 3, MONDAY, 10, 0)) is None


def test_a_desk_open_one_hour_a_week_opens_next_week_after_it_closed():
    weekly = parse_hours({"timezone": "America/New_York", "open": {"mon": "09:00-10:00"}})
    after_it_closed = datetime(2026, 3, 9, 11, 0, tzinfo=weekly.zone)
    assert weekly.opens(after_it_closed) == "next Monday at 09:00 New York time"


def test_summer_time_moves_the_opening_in_utc_not_on_the_wall_clock(office: Hours):
    # Berlin moves to summer time on 2026-03-29: 09:00 is 08:00 UTC before, 07:00 UTC after.
    assert office.next_opening(datetime.fromisoformat("2026-03-27T06:00:00+00:00")).isoformat() == (
        "2026-03-27T09:00:00+01:00"
    )
    assert office.next_opening(datetime.fromisoformat("2026-03-30T06:00:00+00:00")).isoformat() == (
        "2026-03-30T09:00:00+02:00"
    )
    assert office.is_open(datetime.fromisoformat("2026-03-30T07:30:00+00:00"))


def test_ranges_over_the_weekend_lists_closed_days_and_midnight_are_understood():
    hours = parse_hours({
        "timezone": "UTC",
        "open": {"fri-mon": ["20:00-24:00"], "tue,wed": "00:00-06:00", "thu": "closed"},
    })
    assert hours.week == (
        ((1200, 1440),), ((0, 360),), ((0, 360),), (), ((1200, 1440),), ((1200, 1440),), ((1200, 1440),),
    )
    assert hours.is_open(datetime.fromisoformat("2026-03-13T23:59:00+00:00"))
    assert hours.place == "UTC"


def test_the_clock_can_be_frozen_for_every_default(office: Hours, monkeypatch):
    monkeypatch.setattr(hours_module, "now", lambda: berlin(2026, 3, MONDAY, 18, 0))
    assert (office.is_open(), office.opens()) == (False, "tomorrow at 09:00 Berlin time")
    monkeypatch.setattr(hours_module, "now", lambda: berlin(2026, 3, MONDAY, 11, 0))
    assert (office.is_open(), office.opens()) == (True, None)


def write_config(tmp_path: Path, human: dict) -> Path:
    path = tmp_path / "handoff_config.yml"
    path.write_text(yaml.safe_dump({"handoff_hosts": {
        "helpdesk": {"title": "Helpdesk", "url": "http://localhost:5005"},
        "human": {"title": "Support team", "url": "http://localhost:8800", "kind": "parlant", **human},
    }}, sort_keys=False))
    return path


def test_a_desk_in_the_config_carries_its_hours(tmp_path: Path):
    config = load_config(write_config(tmp_path, {"hours": OFFICE}))
    assert config.get_host("human").hours == parse_hours(OFFICE)
    assert config.get_host("helpdesk").hours is None


@pytest.mark.parametrize("hours, message", [
    ("9-5", "hours must be a mapping (e.g. hours: {timezone: Europe/Berlin"),
    ({"tz": "UTC", "open": {"mon": "09:00-17:00"}}, "hours has unknown key 'tz' (allowed: timezone, open)"),
    ({"open": {"mon": "09:00-17:00"}}, "hours has no timezone (add timezone: an IANA name such as"),
    ({"timezone": "Europe/Berln", "open": {"mon": "09:00-17:00"}},
     "hours timezone 'Europe/Berln' is not a known time zone (use an IANA name such as Europe/Berlin"),
    ({"timezone": "UTC"}, 'hours has no open times (add open: {mon-fri: "09:00-17:00"}'),
    ({"timezone": "UTC", "open": {"mon-fry": "09:00-17:00"}},
     "hours open 'mon-fry' is not a day or a range of days (use mon, tue, wed, thu, fri, sat or sun"),
    ({"timezone": "UTC", "open": {"mon": "9-17"}},
     "hours open mon '9-17' is not a time span (use \"09:00-17:00\", several spans as"),
    ({"timezone": "UTC", "open": {"mon": "09:00-25:00"}},
     "hours open mon '09:00-25:00' has a time that does not exist"),
    ({"timezone": "UTC", "open": {"fri": "22:00-06:00"}},
     "hours open fri '22:00-06:00' does not end after it starts (a span ends the day it starts: "
     'for a night shift write fri: "22:00-24:00" and sat: "00:00-06:00")'),
    ({"timezone": "UTC", "open": {"mon": "09:00-12:00, 11:00-17:00"}}, "has spans that overlap"),
    ({"timezone": "UTC", "open": {"mon-fri": "09:00-17:00", "fri": "10:00-12:00"}},
     "hours open names fri twice (in 'mon-fri' and 'fri'; give each day once)"),
    ({"timezone": "UTC", "open": {"mon": 540}}, "hours open mon is 540, not a time span (quote it and use"),
    ({"timezone": "UTC", "open": {"sun": "closed"}}, "hours open has no opening time (add e.g. mon-fri:"),
])
def test_hours_that_cannot_be_used_stop_the_config_naming_file_host_key_and_fix(tmp_path, hours, message):
    path = write_config(tmp_path, {"hours": hours})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: host 'human' ")
    assert message in str(error.value)


def test_only_a_desk_has_hours(tmp_path: Path):
    path = tmp_path / "handoff_config.yml"
    path.write_text(yaml.safe_dump({"handoff_hosts": {
        "helpdesk": {"title": "Helpdesk", "url": "http://localhost:5005", "hours": OFFICE},
    }}))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}: host 'helpdesk' has hours, which only a kind: parlant host can have (remove hours:)"
    )
