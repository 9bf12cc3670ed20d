"""The chatroom's store, each test on SQLite and on a real PostgreSQL (skipped when it is not installed)."""
from __future__ import annotations

import itertools
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Connection, Engine

from chatroom import create_app, store
from chatroom.store import migrations
from chatroom.store.engine import create_engine
from chatroom.store.schema import metadata
from tests.postgres import MISSING, running_postgres, server_binaries

UNVERSIONED_SCHEMA = Path(__file__).parent / "data" / "chatroom_unversioned.sql"


def wait_for_a_lock_wait(watcher: Connection, seconds: float = 10) -> None:
    """Return once some PostgreSQL session waits for a lock another holds."""
    deadline = time.monotonic() + seconds
    while not watcher.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE NOT granted").scalar():
        if time.monotonic() > deadline:
            pytest.fail("no session came to wait for a lock")


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL for the session (tests/postgres.py); return its base URL, without a database."""
    if server_binaries() is None:
        pytest.skip(MISSING)
    with running_postgres() as url:
        yield url.rsplit("/", 1)[0]


def new_postgres_database(postgres: str, name: str) -> str:
    admin = create_engine(f"{postgres}/postgres")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{postgres}/{name}"


_databases = itertools.count()


def new_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """Return the DATABASE setting of an empty database on ``backend``."""
    if backend == "sqlite":
        return str(tmp_path / f"chatroom-{next(_databases)}.sqlite")
    return new_postgres_database(request.getfixturevalue("postgres"), f"chatroom_{next(_databases)}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def engine(request, backend, tmp_path_factory) -> Iterator[Engine]:
    """An engine on a database at the newest schema, shared by the module's tests."""
    engine = create_engine(new_database(request, backend, tmp_path_factory.mktemp("store")))
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine) -> Iterator[Connection]:
    """A connection on an emptied database (ids keep counting up from earlier tests)."""
    with engine.connect() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
        yield connection


@pytest.fixture
def other(engine) -> Iterator[Connection]:
    """A second connection, as another request would have."""
    with engine.connect() as connection:
        yield connection


def conversation_at_desk(db: Connection, conversation_id: str = "c1") -> store.Stay:
    conversation = store.create_conversation(db, conversation_id, "helpdesk")
    store.add_message(db, conversation_id, "user", "helpdesk", {"text": "a human please"})
    store.switch_host(db, conversation, "human", "a human")
    return store.open_stay(db, f"s-{conversation_id}", conversation_id, "human", "helpdesk", "a human")


# Conversations and the transcript


def test_conversation_is_found_by_id_and_missing_ones_are_none(db):
    created = store.create_conversation(db, "c1", "helpdesk")

    assert created == store.Conversation("c1", "helpdesk")
    assert store.find_conversation(db, "c1") == created
    assert store.find_conversation(db, "nope") is None
    assert store.find_conversation(db, None) is None
    assert store.find_conversation(db, "") is None


def test_switch_moves_the_conversation_and_is_counted_by_route(db):
    conversation = store.create_conversation(db, "c1", "helpdesk")
    store.create_conversation(db, "c2", "helpdesk")
    before = time.time()

    moved = store.switch_host(db, conversation, "financial", "card blocked")
    store.switch_host(db, moved, "helpdesk", None)
    store.switch_host(db, store.Conversation("c2", "helpdesk"), "financial", "loan")

    assert moved == store.Conversation("c1", "financial")
    assert store.find_conversation(db, "c1") == store.Conversation("c1", "helpdesk")
    routes = [dict(row) for row in store.count_routes(db, before - 1)]
    assert routes == [
        {"from_host": "helpdesk", "to_host": "financial", "count": 2},
        {"from_host": "financial", "to_host": "helpdesk", "count": 1},
    ]
    assert routes[0]["count"] == store.count_routes(db, 0)[0]["count"]
    assert store.count_routes(db, time.time() + 60) == []


def test_messages_count_up_and_are_listed_after_an_id(db):
    store.create_conversation(db, "c1", "helpdesk")
    store.create_conversation(db, "c2", "helpdesk")
    first = store.add_message(db, "c1", "user", "helpdesk", {"text": "hi"})
    store.add_message(db, "c2", "user", "helpdesk", {"text": "elsewhere"})
    second = store.add_message(db, "c1", "bot", "helpdesk", {"text": "hello", "image": "https://x/y.png"})
    notice = store.add_message(db, "c1", "notice", None, {"text": "moved"})

    assert first.id < second.id < notice.id
    assert store.list_messages(db, "c1") == [first, second, notice]
    assert store.list_messages(db, "c1", first.id) == [second, notice]
    assert store.list_messages(db, "c1", notice.id) == []
    assert store.last_message_id(db, "c1") == notice.id
    assert store.last_message_id(db, "nobody") == 0


def test_message_json_names_buttons_by_message_and_index(db):
    store.create_conversation(db, "c1", "helpdesk")
    buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    reply = store.add_message(db, "c1", "bot", "helpdesk", {"text": "pick", "buttons": buttons})

    assert store.list_messages(db, "c1")[0].to_json() == {
        "id": reply.id, "role": "bot", "host": "helpdesk", "text": "pick",
        "buttons": [{"id": f"{reply.id}:0", "title": "Yes"}, {"id": f"{reply.id}:1", "title": "No"}],
    }


def test_a_role_outside_user_bot_notice_is_refused(db):
    store.create_conversation(db, "c1", "helpdesk")

    with pytest.raises(sa.exc.IntegrityError):
        store.add_message(db, "c1", "operator", None, {"text": "sneaky"})
    assert store.list_messages(db, "c1") == []


def test_only_the_buttons_of_the_reply_since_the_last_user_message_are_found(db):
    store.create_conversation(db, "c1", "helpdesk")
    buttons = {"text": "pick", "buttons": [{"title": "Yes", "payload": "/affirm"}]}
    old = store.add_message(db, "c1", "bot", "helpdesk", buttons)
    store.add_message(db, "c1", "user", "helpdesk", {"text": "later"})
    latest = store.add_message(db, "c1", "bot", "helpdesk", buttons)

    assert store.find_button(db, "c1", latest.id, 0) == {"title": "Yes", "payload": "/affirm"}
    assert store.find_button(db, "c1", latest.id, 1) is None
    assert store.find_button(db, "c1", latest.id, -1) is None
    assert store.find_button(db, "c1", old.id, 0) is None
    assert store.find_button(db, "other", latest.id, 0) is None


def test_last_user_text_is_the_persons_latest_message(db):
    store.create_conversation(db, "c1", "helpdesk")
    assert store.last_user_text(db, "c1") is None

    store.add_message(db, "c1", "user", "helpdesk", {"text": "first"})
    store.add_message(db, "c1", "user", "helpdesk", {"text": "second"})
    store.add_message(db, "c1", "bot", "helpdesk", {"text": "reply"})

    assert store.last_user_text(db, "c1") == "second"


# Stays at a desk


def test_opening_a_stay_supersedes_the_open_one_and_marks_the_handoff_point(db):
    first = conversation_at_desk(db)
    handoff_point = store.last_message_id(db, "c1")
    store.add_message(db, "c1", "user", "human", {"text": "still there?"})
    second = store.open_stay(db, "s-2", "c1", "human", "helpdesk", "again")

    assert first.handoff_message_id == handoff_point
    assert first.next_offset == 0 and first.closed_at is None and first.taken_by is None
    assert store.find_stay(db, first.session_id) == store.find_stay(db, "s-c1")
    assert store.find_stay(db, "s-c1").outcome == "superseded"
    assert store.find_stay(db, "s-2") == second
    assert store.find_open_stay(db, "c1") == second
    assert [stay.session_id for stay in store.list_conversation_stays(db, "c1")] == ["s-c1", "s-2"]
    assert store.find_stay(db, "nope") is None


def test_stays_are_listed_open_in_arrival_order_or_all_since_a_time(db):
    first = conversation_at_desk(db, "c1")
    second = conversation_at_desk(db, "c2")
    store.close_stay(db, first.session_id, "closed")

    assert [stay.session_id for stay in store.list_stays(db)] == [second.session_id]
    assert [stay.session_id for stay in store.list_stays(db, open_only=False, since=0)] == ["s-c1", "s-c2"]
    assert store.list_stays(db, open_only=False, since=time.time() + 60) == []
    assert store.find_open_stay(db, "c1") is None


def test_closing_a_stay_happens_once(db):
    stay = conversation_at_desk(db)

    assert store.close_stay(db, stay.session_id, "handed_back:financial") is True
    assert store.close_stay(db, stay.session_id, "closed") is False
    assert store.find_stay(db, stay.session_id).outcome == "handed_back:financial"


def test_a_stay_is_taken_by_the_first_operator_unless_forced(db):
    stay = conversation_at_desk(db)

    assert store.take_stay(db, stay.session_id, "alice", force=False) == "alice"
    assert store.take_stay(db, stay.session_id, "bob", force=False) == "alice"
    assert store.take_stay(db, stay.session_id, "bob", force=True) == "bob"
    assert store.take_stay(db, "nope", "bob", force=True) is None


def test_relayed_events_are_stored_once_and_the_offset_only_moves_forward(db):
    stay = conversation_at_desk(db)
    replies = [(3, {"text": "Hello, Alice here"}), (5, {"text": "How can I help?"})]

    assert store.store_stay_events(db, stay, replies, 6) == 2
    assert store.store_stay_events(db, stay, [*replies, (7, {"text": "Still there?"})], 8) == 1
    # A slow relay that read before the others finishes last.
    assert store.store_stay_events(db, stay, replies[:1], 4) == 0

    after = store.find_stay(db, stay.session_id)
    assert after.next_offset == 8
    assert after.first_reply_at is not None and after.first_reply_at >= after.opened_at
    bot_texts = [m.body["text"] for m in store.list_messages(db, "c1", stay.handoff_message_id)]
    assert bot_texts == ["Hello, Alice here", "How can I help?", "Still there?"]
    assert all(m.host_id == "human" for m in store.list_messages(db, "c1", stay.handoff_message_id))


def test_an_empty_relay_leaves_the_first_reply_unset(db):
    stay = conversation_at_desk(db)

    assert store.store_stay_events(db, stay, [], 2) == 0
    assert store.find_stay(db, stay.session_id).first_reply_at is None
    assert store.find_stay(db, stay.session_id).next_offset == 2


def test_typing_is_shown_until_it_runs_out_or_a_later_event_ends_it(db):
    stay = conversation_at_desk(db)
    now = time.time()

    store.store_stay_events(db, stay, [], 3, typing=(2, "Alice", now + 5))
    assert store.find_stay_typing(db, stay.session_id, now) == {"name": "Alice", "until": now + 5}
    assert store.find_stay_typing(db, stay.session_id, now + 6) is None

    # A relay behind the others may not bring typing back.
    store.store_stay_events(db, stay, [], 2, typing=(1, "Bob", now + 5))
    assert store.find_stay_typing(db, stay.session_id, now)["name"] == "Alice"

    store.store_stay_events(db, stay, [(4, {"text": "Done"})], 5, typing=(4, None, 0.0))
    assert store.find_stay_typing(db, stay.session_id, now) is None


def test_the_same_typing_event_relayed_twice_is_kept_once(db):
    stay = conversation_at_desk(db)
    until = time.time() + 5

    store.store_stay_events(db, stay, [], 3, typing=(2, "Alice", until))
    store.store_stay_events(db, stay, [], 3, typing=(2, "Alice", until))

    assert store.find_stay_typing(db, stay.session_id, until - 1) == {"name": "Alice", "until": until}


def test_queue_position_counts_earlier_unanswered_stays_at_the_same_desk(db):
    first = conversation_at_desk(db, "c1")
    second = conversation_at_desk(db, "c2")
    elsewhere = store.open_stay(db, "s-other", "c2", "billing", "helpdesk", None)
    third = conversation_at_desk(db, "c3")

    assert store.queue_position(db, first) == 1
    assert store.queue_position(db, third) == 2  # c2's stay at this desk was superseded
    assert store.queue_position(db, elsewhere) == 1
    store.store_stay_events(db, first, [(1, {"text": "hi"})], 2)
    assert store.queue_position(db, third) == 1
    assert second.host_id == third.host_id


def test_recent_reply_waits_are_the_seconds_to_a_first_reply_at_one_desk(db):
    stay = conversation_at_desk(db, "c1")
    conversation_at_desk(db, "c2")
    store.store_stay_events(db, stay, [(1, {"text": "hi"})], 2)

    waits = store.recent_reply_waits(db, "human", stay.opened_at - 1)

    assert len(waits) == 1 and 0 <= waits[0] < 60
    assert store.recent_reply_waits(db, "billing", 0) == []
    assert store.recent_reply_waits(db, "human", time.time() + 60) == []


def test_the_no_answer_notice_and_each_stay_notice_are_marked_once(db):
    stay = conversation_at_desk(db)

    assert store.mark_no_answer_told(db, stay.session_id) is True
    assert store.mark_no_answer_told(db, stay.session_id) is False
    assert store.find_stay(db, stay.session_id).no_answer_told_at is not None
    assert store.mark_stay_notice(db, stay.session_id, "arrival") is True
    assert store.mark_stay_notice(db, stay.session_id, "arrival") is False
    assert store.mark_stay_notice(db, stay.session_id, "offline") is True


# Operator logins

def test_an_operator_login_is_kept_seen_and_ended(db):
    made = store.create_operator_session(db, "hash-1", "alice", "fingerprint", 100.0, 500.0)
    store.see_operator_session(db, "hash-1", 160.0)

    assert store.find_operator_session(db, "hash-1") == store.OperatorSession(
        "hash-1", "alice", "fingerprint", 100.0, 160.0, 500.0
    )
    assert made.last_seen_at == 100.0
    store.end_operator_session(db, "hash-1")
    assert store.find_operator_session(db, "hash-1") is None


def test_logins_past_their_lifetime_or_idle_too_long_are_swept_and_no_others(db):
    store.create_operator_session(db, "expired", "alice", "f", 100.0, 200.0)
    store.create_operator_session(db, "idle", "bob", "f", 100.0, 900.0)
    store.create_operator_session(db, "fresh", "carol", "f", 100.0, 900.0)
    store.see_operator_session(db, "fresh", 290.0)

    assert store.end_lapsed_operator_sessions(db, now=300.0, idle_since=250.0) == 2
    assert [store.find_operator_session(db, token) is not None for token in ("expired", "idle", "fresh")] == [
        False, False, True
    ]


# Transactions


def test_writes_outside_a_transaction_are_seen_at_once_by_other_connections(db, other):
    store.create_conversation(db, "c1", "helpdesk")
    store.add_message(db, "c1", "user", "helpdesk", {"text": "hi"})

    assert [m.body["text"] for m in store.list_messages(other, "c1")] == ["hi"]


def test_a_transaction_commits_its_writes_together(db, other):
    store.create_conversation(db, "c1", "helpdesk")
    with store.transaction(db):
        store.add_message(db, "c1", "user", "helpdesk", {"text": "hi"})
        store.add_message(db, "c1", "bot", "helpdesk", {"text": "hello"})
        assert store.list_messages(other, "c1") == []
    assert len(store.list_messages(other, "c1")) == 2
    # Back in autocommit afterwards.
    store.add_message(db, "c1", "user", "helpdesk", {"text": "thanks"})
    assert len(store.list_messages(other, "c1")) == 3


def test_an_error_in_a_transaction_rolls_all_of_it_back(db, other):
    store.create_conversation(db, "c1", "helpdesk")

    with pytest.raises(RuntimeError), store.transaction(db):
        store.add_message(db, "c1", "user", "helpdesk", {"text": "hi"})
        raise RuntimeError("host failed")

    assert store.list_messages(db, "c1") == []
    store.add_message(db, "c1", "user", "helpdesk", {"text": "again"})
    assert [m.body["text"] for m in store.list_messages(other, "c1")] == ["again"]


def test_a_nested_transaction_joins_the_outer_one(db, other):
    conversation = store.create_conversation(db, "c1", "helpdesk")

    with store.transaction(db):
        with store.transaction(db):
            store.add_message(db, "c1", "user", "helpdesk", {"text": "hi"})
        # switch_host opens its own transaction: it joins too.
        store.switch_host(db, conversation, "financial", None)
        assert store.find_conversation(other, "c1").host_id == "helpdesk"
        assert store.list_messages(other, "c1") == []
    assert store.find_conversation(other, "c1").host_id == "financial"

    with pytest.raises(RuntimeError), store.transaction(db):
        store.add_message(db, "c1", "bot", "financial", {"text": "kept?"})
        with store.transaction(db):
            raise RuntimeError("inner failure")
    assert [m.body["text"] for m in store.list_messages(other, "c1")] == ["hi"]


def test_messages_of_one_conversation_commit_in_id_order(db, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time, so ids are drawn in commit order")
    store.create_conversation(db, "c1", "helpdesk")
    late: list[store.Message] = []

    with engine.connect() as second, engine.connect() as watcher:
        with store.transaction(db):
            early = store.add_message(db, "c1", "user", "helpdesk", {"text": "first"})
            writer = threading.Thread(target=lambda: late.append(
                store.add_message(second, "c1", "notice", None, {"text": "second"})
            ))
            writer.start()
            wait_for_a_lock_wait(watcher)
        writer.join(10)

    assert len(late) == 1 and late[0].id > early.id
    assert [(m.id, m.body["text"]) for m in store.list_messages(db, "c1")] == [
        (early.id, "first"), (late[0].id, "second"),
    ]


# The engine, the app and schema versions


def test_database_setting_is_a_sqlite_path_or_a_postgresql_url():
    assert store.database_url("/tmp/x/chatroom.sqlite").render_as_string() == "sqlite:////tmp/x/chatroom.sqlite"
    url = store.database_url("postgresql://chat:pw@127.0.0.1:5433/handoff")
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "127.0.0.1", 5433)
    assert (url.username, url.password, url.database) == ("chat", "pw", "handoff")
    assert store.database_url("postgres://chat@db/handoff").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="DATABASE_URL.*mysql.*postgresql://") as refused:
        store.database_url("mysql://chat:secret@db/handoff")
    assert "secret" not in str(refused.value)


def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(db, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    pragmas = {name: db.exec_driver_sql(f"PRAGMA {name}").scalar()
               for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}

    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 10000, "foreign_keys": 1}


@contextmanager
def recorded_statements(db: Connection) -> Iterator[list[tuple[str, object]]]:
    """Collect every statement the block runs on ``db``, with its parameters."""
    statements: list[tuple[str, object]] = []

    def record(_connection, _cursor, statement, parameters, _context, _many) -> None:
        statements.append((statement, parameters))

    sa.event.listen(db, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(db, "before_cursor_execute", record)


def full_scans(db: Connection, statements: list[tuple[str, object]]) -> list[tuple[str, str]]:
    """Return each (statement, step) in SQLite's plans of the statements that reads a whole table."""
    scans = []
    for statement, parameters in statements:
        if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            continue
        plan = db.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        scans += [(statement, row[-1]) for row in plan if re.match(r"SCAN (?!CONSTANT ROW)", row[-1])]
    return scans


def test_every_query_the_store_runs_uses_an_index(db, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("read from SQLite's query plans; PostgreSQL plans small tables by scanning")
    with recorded_statements(db) as statements:
        stay = conversation_at_desk(db)
        store.find_conversation(db, "c1")
        store.list_messages(db, "c1", 1)
        store.find_button(db, "c1", 1, 0)
        store.last_user_text(db, "c1")
        store.count_routes(db, 0)
        store.find_open_stay(db, "c1")
        store.list_stays(db)
        store.list_stays(db, open_only=False, since=0)
        store.list_conversation_stays(db, "c1")
        store.store_stay_events(db, stay, [(1, {"text": "hi"})], 2, typing=(1, "Alice", time.time() + 5))
        store.take_stay(db, stay.session_id, "alice", force=False)
        store.queue_position(db, stay)
        store.recent_reply_waits(db, "human", 0)
        store.find_stay_typing(db, stay.session_id, time.time())
        store.mark_no_answer_told(db, stay.session_id)
        store.mark_stay_notice(db, stay.session_id, "arrival")
        store.close_stay(db, stay.session_id, "closed")
        store.create_operator_session(db, "t1", "alice", "f1", 1.0, 10.0)
        store.find_operator_session(db, "t1")
        store.see_operator_session(db, "t1", 2.0)
        store.end_lapsed_operator_sessions(db, 3.0, 1.0)
        store.end_operator_session(db, "t1")

    assert len(statements) > 20
    assert full_scans(db, statements) == []


def test_a_new_database_is_built_at_the_newest_revision(request, backend, tmp_path):
    engine = create_engine(new_database(request, backend, tmp_path))
    try:
        migrations.upgrade(engine)
        migrations.upgrade(engine)
        with engine.connect() as connection:
            revision = migrations.current_revision(connection)
            inspector = sa.inspect(connection)
            tables = set(inspector.get_table_names())
            indexes = {index["name"] for table in metadata.tables for index in inspector.get_indexes(table)}
    finally:
        engine.dispose()

    assert revision == migrations.head()
    assert tables == {*metadata.tables, "alembic_version"}
    assert indexes == {index.name for table in metadata.tables.values() for index in table.indexes}


def test_a_worker_that_loses_the_race_to_upgrade_finds_the_schema_ready(request, backend, tmp_path, caplog):
    caplog.set_level(logging.INFO, "chatroom.store.migrations")
    engine = create_engine(new_database(request, backend, tmp_path))
    outcome: list[BaseException | None] = []

    def upgrade() -> None:
        try:
            migrations.upgrade(engine)
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)

    try:
        with engine.connect() as first, engine.connect() as watcher:
            with store.transaction(first):
                migrations._upgrade(first)
                second = threading.Thread(target=upgrade)
                second.start()
                if backend == "postgresql":
                    # SQLite's wait for the write lock cannot be seen from outside.
                    wait_for_a_lock_wait(watcher)
            second.join(30)
            assert outcome == [None]
            assert migrations.current_revision(watcher) == migrations.head()
            if backend == "postgresql":
                assert "upgraded by another process meanwhile" in caplog.text
    finally:
        engine.dispose()


def test_a_database_made_before_versions_is_adopted_with_its_rows(tmp_path):
    path = tmp_path / "chatroom.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(UNVERSIONED_SCHEMA.read_text())
        old.execute("INSERT INTO conversation VALUES ('c1', 'human', 1.0, 2.0)")
        old.execute("INSERT INTO message (conversation_id, role, host_id, body, at) "
                    "VALUES ('c1', 'user', 'helpdesk', '{\"text\": \"hi\"}', 1.5)")
        old.execute("INSERT INTO switch (conversation_id, from_host, to_host, reason, at) "
                    "VALUES ('c1', 'helpdesk', 'human', 'asked', 1.6)")
        old.execute("INSERT INTO desk_session (session_id, conversation_id, host_id, from_host, opened_at, "
                    "handoff_message_id) VALUES ('s1', 'c1', 'human', 'helpdesk', 1.7, 1)")
    old.close()

    app = create_app({"TESTING": True, "DATABASE": str(path), "SECRET_KEY": "test"})

    with app.app_context():
        db = store.get_db()
        assert migrations.current_revision(db) == migrations.head()
        assert store.find_conversation(db, "c1") == store.Conversation("c1", "human")
        assert [(m.id, m.body) for m in store.list_messages(db, "c1")] == [(1, {"text": "hi"})]
        assert store.find_open_stay(db, "c1").session_id == "s1"
        assert store.count_routes(db, 0)[0]["count"] == 1
        assert store.add_message(db, "c1", "user", "human", {"text": "later"}).id == 2
        indexes = {index["name"] for index in sa.inspect(db).get_indexes("desk_session")}
        assert {"desk_session_by_conversation", "desk_session_open", "desk_session_waiting"} <= indexes


def test_a_request_borrows_one_connection_and_gives_it_back(request, backend, tmp_path):
    app = Flask("store-test")
    app.config["DATABASE"] = new_database(request, backend, tmp_path)
    store.init_app(app)
    pool = store.get_engine(app).pool

    with app.test_request_context():
        connection = store.get_db()
        assert store.get_db() is connection
        store.create_conversation(connection, "c1", "helpdesk")
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0
    with app.test_request_context():
        assert store.find_conversation(store.get_db(), "c1") == store.Conversation("c1", "helpdesk")
    store.get_engine(app).dispose()


def test_a_forked_process_makes_its_own_engine(tmp_path, monkeypatch):
    app = Flask("store-test")
    app.config["DATABASE"] = str(tmp_path / "chatroom.sqlite")
    parent = store.get_engine(app)
    assert store.get_engine(app) is parent

    monkeypatch.setattr(os, "getpid", lambda: -1)
    child = store.get_engine(app)

    assert child is not parent
    assert store.get_engine(app) is child
    child.dispose()


def test_the_app_uses_postgresql_when_database_url_is_set(request, tmp_path, monkeypatch):
    url = new_database(request, "postgresql", tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    app = create_app({"TESTING": True, "SECRET_KEY": "test"})
    client = app.test_client()

    started = client.post("/api/conversation").get_json()
    with client.session_transaction() as session:
        conversation_id = session["conversation_id"]

    assert app.config["DATABASE"] == url
    assert store.get_engine(app).dialect.name == "postgresql"
    with app.app_context():
        found = store.find_conversation(store.get_db(), conversation_id)
    assert found == store.Conversation(conversation_id, started["host"]["id"])
    store.get_engine(app).dispose()
