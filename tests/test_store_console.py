"""The console's part of the store (notes, live conversations, takeovers, figures), both backends."""
from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from chatroom import store
from chatroom.store import migrations
from chatroom.store.engine import create_engine
from chatroom.store.schema import metadata
from tests import test_store
from tests.test_store import new_database

# The store's fixtures: each test on an emptied database, on SQLite and on PostgreSQL.
postgres, backend, engine, db = test_store.postgres, test_store.backend, test_store.engine, test_store.db

ENVELOPE = {"reason": "out_of_domain", "summary": "pay the emblem card", "from_host": "helpdesk"}


def say(db, conversation_id: str, role: str, text: str) -> store.Message:
    host_id = "helpdesk" if role != "notice" else None
    return store.add_message(db, conversation_id, role, host_id, {"text": text})


def test_the_migrations_build_exactly_the_tables_the_queries_expect(request, backend, tmp_path):
    fresh = create_engine(new_database(request, backend, tmp_path))
    try:
        migrations.upgrade(fresh)
        with fresh.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
            revision = migrations.current_revision(connection)
    finally:
        fresh.dispose()
    assert revision == migrations.head()
    assert differences == []


def test_a_switch_keeps_its_reason_code_and_envelope(db):
    conversation = store.create_conversation(db, "c1", "helpdesk")
    store.switch_host(
        db, conversation, "financial", "pay my card", reason_code="out_of_domain", envelope=ENVELOPE
    )
    store.switch_host(db, store.Conversation("c1", "financial"), "helpdesk", None)

    rows = db.execute(sa.text("SELECT reason, reason_code, envelope FROM switch ORDER BY id")).all()
    assert [(row.reason, row.reason_code) for row in rows] == [("pay my card", "out_of_domain"), (None, None)]
    assert json.loads(rows[0].envelope) == ENVELOPE and rows[1].envelope is None
    assert [(s.from_host, s.to_host, s.reason_code) for s in store.list_switches(db, 0, time.time() + 1)] == [
        ("helpdesk", "financial", "out_of_domain"), ("financial", "helpdesk", None),
    ]


def test_the_latest_switch_of_a_conversation_comes_with_its_envelope(db):
    assert store.find_latest_switch(db, "c1") is None
    conversation = store.create_conversation(db, "c1", "helpdesk")
    store.create_conversation(db, "c2", "helpdesk")
    store.switch_host(db, conversation, "financial", None, reason_code="out_of_domain", envelope=ENVELOPE)
    to_desk = {"reason": "asked_for_human", "request": "a person please"}
    at_financial = store.Conversation("c1", "financial")
    store.switch_host(db, at_financial, "human", None, reason_code="asked_for_human", envelope=to_desk)

    latest = store.find_latest_switch(db, "c1")
    assert (latest.from_host, latest.to_host, latest.reason_code, latest.envelope) == (
        "financial", "human", "asked_for_human", to_desk,
    )
    assert store.find_latest_switch(db, "c2") is None
    store.switch_host(db, store.Conversation("c1", "human"), "helpdesk", "host removed from config")
    assert store.find_latest_switch(db, "c1").envelope is None


def test_notes_are_kept_in_order_after_the_message_that_was_last(db):
    store.create_conversation(db, "c1", "helpdesk")
    store.create_conversation(db, "c2", "helpdesk")
    assert store.add_note(db, "c1", "alice", "before anything").after_message_id == 0
    said = say(db, "c1", "user", "my card is blocked")
    note = store.add_note(db, "c1", "bob", "I know this one")
    store.add_note(db, "c2", "alice", "elsewhere")

    notes = store.list_notes(db, "c1")
    assert [(n.operator, n.text, n.after_message_id) for n in notes] == [
        ("alice", "before anything", 0), ("bob", "I know this one", said.id),
    ]
    assert notes[1] == note and note.to_json()["text"] == "I know this one"
    assert [m.body["text"] for m in store.list_messages(db, "c1")] == ["my card is blocked"], "no note in it"


def test_active_conversations_are_those_with_the_hosts_asked_for_latest_first(db):
    for conversation_id, host_id in [("old", "helpdesk"), ("a", "helpdesk"), ("b", "financial"),
                                     ("desk", "human"), ("silent", "helpdesk")]:
        store.create_conversation(db, conversation_id, host_id)
    say(db, "old", "user", "long ago")
    db.execute(sa.text("UPDATE conversation SET updated_at = 1 WHERE id = 'old'"))
    say(db, "a", "user", "hello")
    say(db, "a", "bot", "Hi, how can I help?")
    say(db, "desk", "user", "a person please")
    say(db, "b", "user", "my balance?")
    since = time.time() - 60

    active = store.list_active_conversations(db, ["helpdesk", "financial"], since, 10)
    assert [(c.id, c.host_id, c.last_role, c.last_body["text"]) for c in active] == [
        ("b", "financial", "user", "my balance?"),
        ("a", "helpdesk", "bot", "Hi, how can I help?"),
    ]
    assert active[0].updated_at >= active[0].created_at >= since
    assert [c.id for c in store.list_active_conversations(db, ["helpdesk", "financial"], since, 1)] == ["b"]
    assert store.list_active_conversations(db, [], since, 10) == []


def test_a_takeover_is_marked_on_the_newest_switch_and_on_the_stay(db):
    conversation = store.create_conversation(db, "c1", "helpdesk")
    moved = store.switch_host(db, conversation, "financial", None)
    store.switch_host(db, moved, "human", "taken over by alice")
    stay = store.open_stay(db, "s1", "c1", "human", "financial", "taken over by alice")

    store.mark_takeover(db, "c1", stay.session_id, "alice")

    assert [s.reason_code for s in store.list_switches(db, 0, time.time() + 1)] == [None, "operator_takeover"]
    marked = store.find_stay(db, "s1")
    assert (marked.reason_code, marked.taken_by) == ("operator_takeover", "alice")


def test_a_stay_taken_over_holds_no_place_in_the_queue(db):
    for conversation_id in ("taken", "waiting"):
        store.create_conversation(db, conversation_id, "helpdesk")
    store.open_stay(db, "s-taken", "taken", "human", "helpdesk", None)
    store.mark_takeover(db, "taken", "s-taken", "alice")
    waiting = store.open_stay(db, "s-waiting", "waiting", "human", "helpdesk", None)

    assert store.queue_position(db, waiting) == 1


def test_switches_and_stays_are_listed_inside_the_period_only(db):
    store.create_conversation(db, "c1", "helpdesk")
    store.switch_host(db, store.Conversation("c1", "helpdesk"), "human", None)
    store.open_stay(db, "s1", "c1", "human", "helpdesk", None)
    now = time.time()

    assert [s.to_host for s in store.list_switches(db, now - 60, now + 1)] == ["human"]
    assert store.list_switches(db, now + 1, now + 60) == []
    assert store.list_switches(db, 0, now - 60) == []
    assert [s.session_id for s in store.list_stays_between(db, now - 60, now + 1)] == ["s1"]
    assert store.list_stays_between(db, now + 1, now + 60) == []


def test_contained_conversations_are_those_where_the_person_wrote_and_never_reached_a_desk(db):
    for conversation_id in ("bot-only", "desk", "silent", "bot-too"):
        store.create_conversation(db, conversation_id, "helpdesk")
    for conversation_id in ("bot-only", "desk", "bot-too"):
        say(db, conversation_id, "user", "hello")
    store.open_stay(db, "s1", "desk", "human", "helpdesk", None)
    now = time.time()

    assert store.count_contained(db, now - 60, now + 1) == (3, 2)
    assert store.count_contained(db, now + 1, now + 60) == (0, 0)


def test_every_console_query_uses_an_index(db, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("read from SQLite's query plans; PostgreSQL plans small tables by scanning")
    store.create_conversation(db, "c1", "helpdesk")
    say(db, "c1", "user", "hi")
    store.switch_host(db, store.Conversation("c1", "helpdesk"), "human", None)
    store.open_stay(db, "s1", "c1", "human", "helpdesk", None)
    with test_store.recorded_statements(db) as statements:
        store.add_note(db, "c1", "alice", "note")
        store.list_notes(db, "c1")
        store.list_active_conversations(db, ["helpdesk"], 0, 10)
        store.mark_takeover(db, "c1", "s1", "alice")
        store.list_switches(db, 0, time.time() + 1)
        store.list_stays_between(db, 0, time.time() + 1)
        store.count_contained(db, 0, time.time() + 1)

    assert len(statements) >= 8
    assert test_store.full_scans(db, statements) == []
