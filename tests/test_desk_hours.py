"""A desk with hours, against a real desk and scripted bots, at a frozen time inside and outside the hours."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from handoff import hours
from tests import test_desk
from tests.stack import free_port
from tests.test_desk import Desk, at_desk, log_in, queue, say, texts

# The desk's fixtures (bots alpha and beta, a desk, an app), with this module's config.
bots, desk, app = test_desk.bots, test_desk.desk, test_desk.app

BERLIN = hours.ZoneInfo("Europe/Berlin")
OPEN = {"mon-fri": "09:00-17:00"}
# 2026-03-13 is a Friday.
FRIDAY_EVENING = datetime(2026, 3, 13, 18, 30, tzinfo=BERLIN)
FRIDAY_MORNING = datetime(2026, 3, 13, 10, 0, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def desk_config(tmp_path_factory, bots) -> Path:
    desk_port = free_port(also_free_at=18)
    config = {
        "handoff_hosts": {
            **{host_id: {"title": host.title, "url": host.url} for host_id, host in bots.items()},
            "human": {
                "title": "Support team", "url": f"http://localhost:{desk_port}", "kind": "parlant",
                "hours": {"timezone": "Europe/Berlin", "open": OPEN},
            },
        },
        "entry": "alpha",
    }
    path = tmp_path_factory.mktemp("desk-hours") / "handoff_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def freeze(monkeypatch, at: datetime) -> None:
    monkeypatch.setattr(hours, "now", lambda: at)


def answered_earlier(app) -> None:
    """Leave one answered stay behind, so the desk has a reply time to estimate waits from."""
    _person, _state = at_desk(app, "an earlier question")
    operator = app.test_client()
    log_in(operator)
    (stay,) = [s for s in queue(operator) if s["reason"] == "an earlier question"]
    response = operator.post(
        f"/desk/api/conversations/{stay['conversation_id']}/messages", json={"text": "Answered."}
    )
    assert response.status_code == 200


def test_outside_the_hours_the_person_is_told_when_it_opens_and_the_message_waits(
    app, desk: Desk, monkeypatch
):
    freeze(monkeypatch, FRIDAY_MORNING)
    answered_earlier(app)
    freeze(monkeypatch, FRIDAY_EVENING)

    person, state = at_desk(app, "my card is blocked")

    assert texts(state["messages"], "bot")[-1] == (
        "Support team is closed right now and opens on Monday at 09:00 Berlin time. "
        "Leave your message here: it waits in their queue for the next shift."
    )
    assert not any("someone will answer here shortly" in text for text in texts(state["messages"]))
    say(person, "please block it until I call")
    app.config["DESK_WAIT"] = 0
    info = person.get("/api/updates?after=0").get_json()["desk"]
    assert info["opens"] == "on Monday at 09:00 Berlin time"
    assert (info["waiting"], info["position"], info["estimated_wait_seconds"]) == (True, 1, None)
    operator = app.test_client()
    log_in(operator)
    (stay,) = [s for s in queue(operator) if s["reason"] == "my card is blocked"]
    assert (stay["status"], stay["last_text"]) == ("waiting", "please block it until I call")
    messages = [e["data"]["message"] for e in desk.events(stay["session_id"]) if e["kind"] == "message"]
    assert messages == ["please block it until I call"]


def test_inside_the_hours_the_person_is_connected_and_sees_place_and_estimated_wait(
    app, desk: Desk, monkeypatch
):
    freeze(monkeypatch, FRIDAY_MORNING)
    answered_earlier(app)

    person, state = at_desk(app, "my card is blocked")

    assert texts(state["messages"], "bot")[-1] == (
        "Connecting you with our Support team… someone will answer here shortly."
    )
    app.config["DESK_WAIT"] = 0
    info = person.get("/api/updates?after=0").get_json()["desk"]
    assert info["opens"] is None
    assert (info["waiting"], info["position"]) == (True, 1)
    assert info["estimated_wait_seconds"] > 0
