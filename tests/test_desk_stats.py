"""The desk's figures (/desk/stats) against scripted handoffs written straight into the routing table."""

from __future__ import annotations

import csv
import io
import time

import pytest
import sqlalchemy as sa
import yaml

from chatroom import create_app, store

NOW = time.time()
HOSTS = {
    "helpdesk": {"title": "Helpdesk Assistant", "url": "http://localhost:5905"},
    "financial": {"title": "Financial Assistant", "url": "http://localhost:5906"},
    "human": {"title": "Support team", "url": "http://localhost:5907", "kind": "parlant"},
}
# (conversation, from host, reason, seconds to the first human reply or None, outcome or None)
STAYS = [
    ("c1", "helpdesk", "card blocked", 10, "handed_back:financial"),
    ("c2", "helpdesk", "card blocked", 30, "closed"),
    ("c3", "financial", None, 100, None),
    ("c4", "helpdesk", '=HYPERLINK("http://evil")', None, None),
]


@pytest.fixture
def app(tmp_path, monkeypatch):
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
    connection = store.get_engine(app).connect()
    opened = NOW - 3600
    for conversation_id, from_host, reason, wait, outcome in STAYS:
        conversation = store.create_conversation(connection, conversation_id, from_host)
        store.switch_host(connection, conversation, "human", reason)
        store.open_stay(connection, f"s-{conversation_id}", conversation_id, "human", from_host, reason)
        connection.execute(
            sa.text("UPDATE desk_session SET opened_at = :opened, first_reply_at = :replied "
                    "WHERE session_id = :id"),
            {"opened": opened, "replied": opened + wait if wait is not None else None,
             "id": f"s-{conversation_id}"},
        )
        if outcome:
            store.close_stay(connection, f"s-{conversation_id}", outcome)
    store.switch_host(connection, store.Conversation("c1", "human"), "financial", "handed back by alice")
    # A stay from long ago falls outside the default 30 days.
    old = store.create_conversation(connection, "old", "helpdesk")
    store.switch_host(connection, old, "human", "ancient")
    store.open_stay(connection, "s-old", "old", "human", "helpdesk", "ancient")
    long_ago = {"at": NOW - 90 * 86400}
    connection.execute(sa.text("UPDATE desk_session SET opened_at = :at WHERE session_id = 's-old'"),
                       long_ago)
    connection.execute(sa.text("UPDATE switch SET at = :at WHERE conversation_id = 'old'"), long_ago)
    connection.close()
    yield app
    app.extensions["stay_readers"].stop()


@pytest.fixture
def operator(app):
    client = app.test_client()
    assert client.post("/desk/login", data={"name": "alice", "password": "secret"}).status_code == 302
    return client


def test_stats_count_routes_reasons_reply_times_and_hand_backs(operator):
    stats = operator.get("/desk/api/stats").get_json()

    assert {(r["from"], r["to"]): r["count"] for r in stats["routes"]} == {
        ("helpdesk", "human"): 3,
        ("financial", "human"): 1,
        ("human", "financial"): 1,
    }
    assert stats["routes"][0]["label"] == "Helpdesk Assistant → Support team"
    assert stats["reasons"][0] == {"reason": "card blocked", "count": 2}
    assert stats["desk_handoffs"] == 4 and stats["answered"] == 3
    assert stats["first_reply_seconds"] == {"median": 30, "p90": 100}
    assert (stats["ended"], stats["handed_back"], stats["hand_back_rate"]) == (2, 1, 0.5)


def test_a_longer_window_takes_in_older_handoffs(operator):
    assert operator.get("/desk/api/stats?days=120").get_json()["desk_handoffs"] == 5
    assert operator.get("/desk/api/stats?days=many").status_code == 400


def test_csv_export_has_one_row_per_stay_and_defuses_formulas(operator):
    response = operator.get("/desk/api/stats.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["conversation_id"] for row in rows] == ["c1", "c2", "c3", "c4"]
    assert [row["first_reply_seconds"] for row in rows] == ["10.0", "30.0", "100.0", ""]
    assert rows[0]["outcome"] == "handed_back:financial"
    assert rows[3]["reason"].startswith("'=")


def test_stats_need_a_login(app):
    client = app.test_client()
    assert client.get("/desk/api/stats").status_code == 401
    assert client.get("/desk/api/stats.csv").status_code == 401
    assert client.get("/desk/stats").status_code == 302


def test_stats_page_is_served_to_operators(operator):
    page = operator.get("/desk/stats")
    assert page.status_code == 200 and b"console/stats.js" in page.data
