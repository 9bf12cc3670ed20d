"""Handoff figures (/desk/stats) against a scripted day of handoffs and stays written through the store."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
import yaml
from zoneinfo import ZoneInfo

from chatroom import create_app, store
from chatroom.stats import Period, bucket_starts

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0
HOSTS = {
    "helpdesk": {"title": "Helpdesk Assistant", "url": "http://localhost:5905"},
    "financial": {"title": "Financial Assistant", "url": "http://localhost:5906"},
    "human": {"title": "Support team", "url": "http://localhost:5907", "kind": "parlant"},
}


class Clock:
    """Stands in for the time module where the store and the console read the time."""

    # Every module that stamps what the figures count, and the console that asks for them.
    READERS = (
        "chatroom.store.conversations", "chatroom.store.stays", "chatroom.store.console", "chatroom.console",
    )

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(NOW)
    for module in Clock.READERS:
        monkeypatch.setattr(f"{module}.time", clock)
    return clock


class Script:
    """Writes handoffs and stays through the store, each at a time before ``now``."""

    def __init__(self, db, clock: Clock, now: float = NOW) -> None:
        self.db, self.clock, self.now = db, clock, now

    def at(self, hours_ago: float, seconds: float = 0) -> Script:
        self.clock.now = self.now - hours_ago * HOUR + seconds
        return self

    def start(self, conversation_id: str, host_id: str, *, speaks: bool = True) -> None:
        store.create_conversation(self.db, conversation_id, host_id)
        if speaks:
            store.add_message(self.db, conversation_id, "user", host_id, {"text": "hello"})

    def switch(self, conversation_id: str, to_host: str, code: str | None) -> None:
        conversation = store.find_conversation(self.db, conversation_id)
        store.switch_host(self.db, conversation, to_host, "what the person typed", reason_code=code)

    def to_desk(self, conversation_id: str, session_id: str, code: str | None) -> store.Stay:
        from_host = store.find_conversation(self.db, conversation_id).host_id
        self.switch(conversation_id, "human", code)
        return store.open_stay(
            self.db, session_id, conversation_id, "human", from_host, "what the person typed",
            reason_code=code,
        )

    def stay_again(self, conversation_id: str, session_id: str) -> store.Stay:
        return store.open_stay(self.db, session_id, conversation_id, "human", "helpdesk", "wrote again")

    def reply(self, stay: store.Stay) -> None:
        store.store_stay_events(self.db, stay, [(0, {"text": "Hi, Alice here.", "sender": "alice"})], 1)

    def back(self, conversation_id: str, session_id: str, to_host: str, outcome: str, code: str | None):
        self.switch(conversation_id, to_host, code)
        store.close_stay(self.db, session_id, f"{outcome}:{to_host}")


def seed(db, clock: Clock) -> None:
    """One scripted day (see the expected figures in the tests below), and one handoff three days before."""
    run = Script(db, clock)
    run.at(5).start("c1", "helpdesk")
    s1 = run.to_desk("c1", "s1", "asked_for_human")
    run.at(5, 20).reply(s1)
    run.at(4).back("c1", "s1", "helpdesk", "handed_back", "operator_handback")

    run.at(3).start("c2", "helpdesk")
    run.switch("c2", "financial", "out_of_domain")
    run.start("c3", "financial")
    run.to_desk("c3", "s3", "named_target")
    run.at(3, 60).back("c3", "s3", "financial", "left", None)

    run.at(2).start("c4", "helpdesk")
    s4 = run.to_desk("c4", "s4", "loop_detected")
    run.at(2, 100).reply(s4)
    store.close_stay(db, "s4", "closed")
    run.at(1.75).start("c9", "helpdesk")
    run.to_desk("c9", "s9a", "not_understood")
    # The person wrote again: a new stay supersedes the first, which nobody had answered.
    s9b = run.at(1.75, 600).stay_again("c9", "s9b")
    run.at(1.75, 630).reply(s9b)

    run.at(1).start("c5", "helpdesk")
    run.to_desk("c5", "s5", "a code outside the vocabulary")
    run.at(0.75).start("c6", "helpdesk")
    s6 = run.to_desk("c6", "s6", None)
    store.mark_takeover(db, "c6", "s6", "alice")
    run.at(0.75, 5).reply(s6)
    run.at(1 / 3).back("c6", "s6", "helpdesk", "handed_back", "operator_handback")

    run.at(0.5).start("c7", "helpdesk")
    run.start("c8", "helpdesk", speaks=False)

    run.at(72).start("old", "helpdesk")
    run.to_desk("old", "s-old", "asked_for_human")
    clock.now = NOW


@pytest.fixture
def app(tmp_path, monkeypatch, clock):
    path = tmp_path / "handoff_config.yml"
    path.write_text(yaml.safe_dump({"handoff_hosts": HOSTS}))
    monkeypatch.setenv("HANDOFF_CONFIG", str(path))
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(tmp_path / "chatroom.sqlite"),
            "SECRET_KEY": "test",
            "DESK_OPERATORS": "alice:secret",
        }
    )
    with store.get_engine(app).connect() as connection:
        seed(connection, clock)
    yield app
    app.extensions["stay_readers"].stop()


@pytest.fixture
def operator(app):
    client = app.test_client()
    assert client.post("/desk/login", data={"name": "alice", "password": "secret"}).status_code == 302
    return client


def hourly(counts: dict[int, tuple[int, int]]) -> list[dict]:
    """Return the 25 hours from 12:00 yesterday to 12:00 today (UTC); counts are (handoffs, to a human)."""
    rows = []
    for index in range(25):
        start = datetime.fromtimestamp(NOW - 86400 + index * HOUR, timezone.utc).replace(minute=0)
        handoffs, to_human = counts.get(start.hour, (0, 0)) if index >= 12 else (0, 0)
        rows.append({"start": start.isoformat(), "handoffs": handoffs, "to_human": to_human})
    return rows


EXPECTED_REASONS = [
    {"reason": "operator_handback", "count": 2},
    {"reason": "unspecified", "count": 2},
    {"reason": "asked_for_human", "count": 1},
    {"reason": "loop_detected", "count": 1},
    {"reason": "named_target", "count": 1},
    {"reason": "not_understood", "count": 1},
    {"reason": "operator_takeover", "count": 1},
    {"reason": "out_of_domain", "count": 1},
]
EXPECTED_ROUTES = [
    ("helpdesk", "human", "Helpdesk Assistant → Support team", 5),
    ("human", "helpdesk", "Support team → Helpdesk Assistant", 2),
    ("financial", "human", "Financial Assistant → Support team", 1),
    ("helpdesk", "financial", "Helpdesk Assistant → Financial Assistant", 1),
    ("human", "financial", "Support team → Financial Assistant", 1),
]
EXPECTED_TIMELINE = hourly({7: (1, 1), 8: (1, 0), 9: (3, 1), 10: (2, 2), 11: (2, 2), 12: (1, 0)})


def test_a_days_figures_group_by_reason_route_hour_and_outcome(operator):
    stats = operator.get("/desk/api/stats?days=1").get_json()

    assert (stats["since"], stats["until"]) == ("2026-03-09T12:30:00+00:00", "2026-03-10T12:30:00+00:00")
    assert (stats["timezone"], stats["bucket"], stats["handoffs"]) == ("UTC", "hour", 10)
    assert stats["reasons"] == EXPECTED_REASONS
    assert [(r["from"], r["to"], r["label"], r["count"]) for r in stats["routes"]] == EXPECTED_ROUTES
    assert stats["timeline"] == EXPECTED_TIMELINE
    # s1, s3, s4, s9a, s9b and s5 waited (s6 was a takeover); s1, s4, s9b were answered after 20, 100, 30 s.
    assert stats["first_reply"] == {"stays": 6, "answered": 3, "median_seconds": 30.0, "p90_seconds": 100.0}
    # s3 (the person left) and s9a (superseded) ended before any human reply.
    assert stats["abandonment"] == {"stays": 6, "abandoned": 2, "rate": 0.3333}
    # s1, s3, s4 and s6 ended (s9a was only superseded); s1 and s6 were handed back to a bot.
    assert stats["bounce"] == {"ended": 4, "handed_back": 2, "rate": 0.5}
    # c1-c7 and c9 had the person write (c8 never did); only c2 and c7 never reached the desk.
    assert stats["containment"] == {"conversations": 8, "contained": 2, "rate": 0.25}
    assert [row["conversation_id"] for row in stats["stays"]] == ["c1", "c3", "c4", "c9", "c9", "c5", "c6"]


def csv_rows(operator, name: str, query: str = "days=1") -> list[list[str]]:
    response = operator.get(f"/desk/api/stats/{name}.csv?{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f"attachment; filename=handoffs-{name}.csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_each_figure_exports_as_csv(operator):
    assert csv_rows(operator, "reasons") == [["reason", "count"]] + [
        [row["reason"], str(row["count"])] for row in EXPECTED_REASONS
    ]
    assert csv_rows(operator, "routes") == [["from", "to", "label", "count"]] + [
        [from_host, to_host, label, str(count)] for from_host, to_host, label, count in EXPECTED_ROUTES
    ]
    assert csv_rows(operator, "timeline") == [["start", "handoffs", "to_human"]] + [
        [row["start"], str(row["handoffs"]), str(row["to_human"])] for row in EXPECTED_TIMELINE
    ]
    assert csv_rows(operator, "first_reply") == [
        ["stays", "answered", "median_seconds", "p90_seconds"], ["6", "3", "30.0", "100.0"]
    ]
    assert csv_rows(operator, "abandonment") == [["stays", "abandoned", "rate"], ["6", "2", "0.3333"]]
    assert csv_rows(operator, "bounce") == [["ended", "handed_back", "rate"], ["4", "2", "0.5"]]
    assert csv_rows(operator, "containment") == [["conversations", "contained", "rate"], ["8", "2", "0.25"]]
    stays = csv_rows(operator, "stays")
    assert stays[0] == ["conversation_id", "desk", "from_host", "reason", "reason_code", "opened_at",
                        "first_reply_seconds", "taken_by", "closed_at", "outcome"]
    assert stays[1] == ["c1", "human", "helpdesk", "what the person typed", "asked_for_human",
                        "2026-03-10T07:30:00+00:00", "20.0", "", "2026-03-10T08:30:00+00:00",
                        "handed_back:helpdesk"]
    assert [row[4] for row in stays[1:]] == [
        "asked_for_human", "named_target", "loop_detected", "not_understood", "unspecified", "unspecified",
        "operator_takeover",
    ]
    assert stays[7][7] == "alice"


def test_each_figure_exports_as_json(operator):
    for name, expected in [
        ("reasons", EXPECTED_REASONS),
        ("timeline", EXPECTED_TIMELINE),
        ("bounce", [{"ended": 4, "handed_back": 2, "rate": 0.5}]),
        ("containment", [{"conversations": 8, "contained": 2, "rate": 0.25}]),
    ]:
        exported = operator.get(f"/desk/api/stats/{name}.json?days=1").get_json()
        assert (exported["figure"], exported["rows"], exported["timezone"]) == (name, expected, "UTC")


def test_a_week_per_day_in_berlin_takes_in_the_older_handoff(operator):
    stats = operator.get("/desk/api/stats?days=7&tz=Europe/Berlin").get_json()

    assert (stats["bucket"], stats["handoffs"], stats["timezone"]) == ("day", 11, "Europe/Berlin")
    assert [(row["start"], row["handoffs"], row["to_human"]) for row in stats["timeline"]] == [
        ("2026-03-03T00:00:00+01:00", 0, 0),
        ("2026-03-04T00:00:00+01:00", 0, 0),
        ("2026-03-05T00:00:00+01:00", 0, 0),
        ("2026-03-06T00:00:00+01:00", 0, 0),
        ("2026-03-07T00:00:00+01:00", 1, 1),
        ("2026-03-08T00:00:00+01:00", 0, 0),
        ("2026-03-09T00:00:00+01:00", 0, 0),
        ("2026-03-10T00:00:00+01:00", 10, 6),
    ]
    assert stats["containment"] == {"conversations": 9, "contained": 2, "rate": 0.2222}


def test_hours_are_those_of_the_time_zone_asked_for(operator):
    timeline = operator.get("/desk/api/stats?days=1&tz=Europe/Berlin").get_json()["timeline"]
    busy = [(row["start"], row["handoffs"]) for row in timeline if row["handoffs"]]
    assert busy == [
        ("2026-03-10T08:00:00+01:00", 1), ("2026-03-10T09:00:00+01:00", 1), ("2026-03-10T10:00:00+01:00", 3),
        ("2026-03-10T11:00:00+01:00", 2), ("2026-03-10T12:00:00+01:00", 2), ("2026-03-10T13:00:00+01:00", 1),
    ]


def test_a_day_that_changes_to_summer_time_has_23_hours():
    midnight = datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    period = Period(midnight, midnight + 23 * HOUR, ZoneInfo("Europe/Berlin"), "hour")
    starts = [start.isoformat() for start in bucket_starts(period)]
    assert len(starts) == 23
    assert starts[1:3] == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"]


@pytest.mark.parametrize("query, message", [
    ("days=many", "'days' must be a number."),
    ("days=0", "'days' must be more than 0 and at most 366."),
    ("days=30&by=hour", "Per hour covers at most 7 days; ask for by=day."),
    ("by=week", "'by' must be one of: hour, day."),
    ("tz=Mars/Olympus", "'tz' must be a time zone name such as Europe/Berlin or UTC, not 'Mars/Olympus'."),
])
def test_a_period_that_is_not_valid_is_refused_with_the_fix(operator, query, message):
    response = operator.get(f"/desk/api/stats?{query}")
    assert (response.status_code, response.get_json()["error"]) == (400, message)


def test_an_unknown_export_is_not_found(operator):
    assert operator.get("/desk/api/stats/moods.csv").status_code == 404
    assert operator.get("/desk/api/stats/reasons.xml").status_code == 404


def test_csv_cells_never_start_a_formula(operator, app, clock):
    clock.now = NOW - 60
    with store.get_engine(app).connect() as connection:
        conversation = store.create_conversation(connection, "evil", "helpdesk")
        store.switch_host(connection, conversation, "human", None)
        store.open_stay(connection, "s-evil", "evil", "human", "helpdesk", '=HYPERLINK("http://evil")')
    clock.now = NOW
    stays = csv_rows(operator, "stays")
    assert stays[-1][3] == "'=HYPERLINK(\"http://evil\")"


def test_stats_need_a_login(app):
    client = app.test_client()
    assert client.get("/desk/api/stats").status_code == 401
    assert client.get("/desk/api/stats/reasons.csv").status_code == 401
    assert client.get("/desk/stats").status_code == 302


def test_stats_page_is_served_to_operators(operator):
    page = operator.get("/desk/stats")
    assert page.status_code == 200 and b"console/stats.js" in page.data
