"""The desk's SQL store (desk/store.py) and session rules (desk/sessions.py), on SQLite and PostgreSQL.

Each collection test runs the same calls on Parlant's own in-memory
collection and on ours, and expects the same answers. PostgreSQL runs when
Debian's server binaries are installed (a throwaway cluster on loopback).
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional, TypedDict

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parlant.adapters.db.json_file import JSONFileDocumentDatabase
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.core.async_utils import Timeout
from parlant.core.common import ItemNotFoundError, Version
from parlant.core.loggers import StdoutLogger
from parlant.core.persistence.common import Cursor, ObjectId, SortDirection
from parlant.core.persistence.document_database import identity_loader_for
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore
from parlant.core.tracer import LocalTracer

from desk.sessions import DeskSessionStore, NotifyingSessionListener, SessionSignals
from desk.store import (
    SCHEMA_TABLE,
    SQLDocumentDatabase,
    StoreError,
    create_engine,
    engine_url,
    sql_name,
)


class Doc(TypedDict, total=False):
    id: ObjectId
    creation_utc: str
    version: Version.String
    session_id: str
    offset: int
    kind: str
    deleted: bool
    score: float
    note: Optional[str]


class Strict(TypedDict):
    id: ObjectId
    offset: int


def doc(n: int, **fields) -> Doc:
    # Two documents share each creation time, so the id tie-break matters.
    base = {
        "id": ObjectId(f"d{n:02d}"), "creation_utc": f"2026-01-01T00:00:{n // 2:02d}+00:00",
        "version": "1.0.0",
        "session_id": f"s{n % 3}", "offset": n, "kind": "message" if n % 2 else "status",
        "deleted": n % 4 == 0, "score": n / 4, "note": None if n % 5 == 0 else f"note {n}",
    }
    return Doc(**{**base, **fields})  # type: ignore[typeddict-item]


DOCS = [doc(n) for n in (7, 0, 3, 11, 4, 9, 1, 10, 6, 2, 8, 5)]

FILTERS = [
    {},
    {"id": {"$eq": "d03"}},
    {"session_id": {"$eq": "s1"}},
    {"session_id": {"$eq": "s1"}, "deleted": {"$eq": False}},
    {"session_id": {"$eq": "s0"}, "offset": {"$gte": 3}},
    {"offset": {"$gt": 4}, "kind": {"$eq": "status"}},
    {"offset": {"$lt": 3}},
    {"offset": {"$lte": 3}},
    {"score": {"$gte": 1.5}},
    {"deleted": {"$ne": True}},
    {"deleted": {"$eq": True}},
    {"note": {"$eq": None}},
    {"note": {"$ne": None}},
    {"note": {"$ne": "note 3"}},
    {"note": {"$in": ["note 1", None]}},
    {"note": {"$nin": ["note 1", "note 2"]}},
    {"note": {"$nin": [None]}},
    {"kind": {"$in": ["status"]}},
    {"kind": {"$in": []}},
    {"kind": {"$nin": []}},
    {"id": {"$in": ["d01", "d02", "dxx"]}},
    {"$or": [{"offset": {"$eq": 1}}, {"session_id": {"$eq": "s2"}, "kind": {"$eq": "status"}}]},
    {"$and": [{"session_id": {"$eq": "s0"}}, {"$or": [{"offset": {"$lt": 2}}, {"offset": {"$gt": 8}}]}]},
    {"$and": [{"id": {"$ne": "d01"}}, {"id": {"$ne": "d02"}}]},
    {"$or": [{"session_id": {"$eq": "s1"}, "kind": {"$eq": k}} for k in ("message", "custom")]},
    {"offset": {"$gte": 2, "$lt": 6}},
]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'desk.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def prefix() -> str:
    """Tables of their own for each test: the PostgreSQL server is shared by the module."""
    return sql_name("t", uuid.uuid4().hex[:10])


@asynccontextmanager
async def sql_database(url: str, prefix: str) -> AsyncIterator[SQLDocumentDatabase]:
    engine = create_engine(engine_url(url, Path("/unused")))
    try:
        async with SQLDocumentDatabase(engine, prefix) as database:
            yield database
    finally:
        await engine.dispose()


@asynccontextmanager
async def both(url: str, prefix: str, docs=DOCS, schema=Doc):
    """Yield Parlant's in-memory collection and ours, holding the same documents."""
    async with sql_database(url, prefix) as database:
        ours = await database.get_or_create_collection("docs", schema, identity_loader_for(schema))
        theirs = await TransientDocumentDatabase().get_or_create_collection(
            "docs", schema, identity_loader_for(schema)
        )
        for document in docs:
            await ours.insert_one(dict(document))
            await theirs.insert_one(dict(document))
        yield theirs, ours


def ids(documents) -> list[str]:
    return [document["id"] for document in documents]


def run(coroutine):
    """Run a coroutine to its end on an event loop of its own, in a thread of its own.

    The browser tests start Playwright's sync API for the whole session, and it
    keeps an event loop in the main thread, where asyncio.run won't start another.
    """
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_find_matches_parlants_own_filters_and_order(database_url, prefix):
    async def check():
        async with both(database_url, prefix) as (theirs, ours):
            for filters in FILTERS:
                for direction in (None, SortDirection.ASC, SortDirection.DESC):
                    expected = await theirs.find(filters, sort_direction=direction)
                    found = await ours.find(filters, sort_direction=direction)
                    assert ids(found) == ids(expected), (filters, direction)
                    assert (found.total_count, found.has_more, found.next_cursor) == (
                        expected.total_count, expected.has_more, expected.next_cursor
                    ), (filters, direction)

    run(check())


VALUES = {
    "id": st.sampled_from([d["id"] for d in DOCS] + ["dxx"]),
    "session_id": st.sampled_from(["s0", "s1", "s2", "s9"]),
    "offset": st.integers(-1, 12),
    "kind": st.sampled_from(["message", "status", "custom"]),
    "deleted": st.booleans(),
    "score": st.sampled_from([n / 4 for n in range(13)]),
    "note": st.one_of(st.none(), st.sampled_from(["note 1", "note 2", "note 3", "other"])),
}
# Parlant's own filters compare None only for (in)equality; ordering it would raise there.
ORDERED = [name for name in VALUES if name != "note"]


def field_tests() -> st.SearchStrategy[dict]:
    equality = st.sampled_from(list(VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(["$eq", "$ne"]), VALUES[name])
    )
    ordering = st.sampled_from(ORDERED).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), VALUES[name])
    )
    membership = st.sampled_from(list(VALUES)).flatmap(
        lambda name: st.tuples(
            st.just(name), st.sampled_from(["$in", "$nin"]), st.lists(VALUES[name], max_size=3)
        )
    )
    return st.lists(st.one_of(equality, ordering, membership), min_size=1, max_size=3).map(
        lambda tests: {name: {operator: value} for name, operator, value in tests}
    )


FILTER_TREES = st.recursive(
    field_tests(),
    lambda inner: st.builds(
        lambda operator, parts: {operator: parts},
        st.sampled_from(["$and", "$or"]),
        st.lists(inner, max_size=3),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters=st.lists(FILTER_TREES, min_size=5, max_size=5))
def test_any_filter_selects_what_parlants_own_filter_selects(database_url, filters):
    """Generated filters, nested $and/$or included: our SQL picks the same documents in the same order."""
    async def check():
        async with both(database_url, sql_name("h", uuid.uuid4().hex[:10])) as (theirs, ours):
            for where in filters:
                assert ids(await ours.find(where)) == ids(await theirs.find(where)), where

    run(check())


@pytest.mark.parametrize("direction", [SortDirection.ASC, SortDirection.DESC])
def test_find_pages_by_cursor_like_parlants_store(database_url, prefix, direction):
    async def check():
        async with both(database_url, prefix) as (theirs, ours):
            for filters in ({}, {"deleted": {"$eq": False}}):
                cursor: Cursor | None = None
                pages = 0
                while True:
                    expected = await theirs.find(filters, limit=3, cursor=cursor, sort_direction=direction)
                    found = await ours.find(filters, limit=3, cursor=cursor, sort_direction=direction)
                    assert ids(found) == ids(expected)
                    assert (found.total_count, found.has_more, found.next_cursor) == (
                        expected.total_count, expected.has_more, expected.next_cursor
                    )
                    pages += 1
                    if not found.has_more:
                        break
                    cursor = found.next_cursor
                assert pages >= 3

    run(check())


def test_find_one_returns_the_first_inserted_match_or_the_first_by_sort(database_url, prefix):
    async def check():
        async with both(database_url, prefix) as (theirs, ours):
            for filters in FILTERS:
                assert await ours.find_one(filters) == await theirs.find_one(filters), filters
            for sort in (
                (("offset", SortDirection.DESC),),
                (("offset", SortDirection.ASC),),
                (("session_id", SortDirection.ASC), ("offset", SortDirection.DESC)),
            ):
                for filters in ({}, {"session_id": {"$eq": "s2"}}, {"kind": {"$eq": "nothing"}}):
                    expected = await theirs.find_one(filters, sort=sort)
                    assert await ours.find_one(filters, sort=sort) == expected, (filters, sort)

    run(check())


def test_update_one_merges_into_the_first_match_and_upserts_only_when_asked(database_url, prefix):
    async def check():
        async with both(database_url, prefix) as (theirs, ours):
            calls = [
                ({"session_id": {"$eq": "s1"}}, {"note": "changed", "score": 9.5}, False),
                ({"id": {"$eq": "missing"}}, {"id": "missing", "offset": 99}, False),
                ({"id": {"$eq": "new"}}, doc(20, id="new", session_id="s9"), True),
                ({"id": {"$eq": "new"}}, {"offset": 101}, True),
            ]
            for filters, params, upsert in calls:
                expected = await theirs.update_one(filters, dict(params), upsert=upsert)
                assert await ours.update_one(filters, dict(params), upsert=upsert) == expected, params
            assert (await ours.find({})).items == (await theirs.find({})).items

    run(check())


def test_delete_one_removes_the_first_match_and_returns_it(database_url, prefix):
    async def check():
        async with both(database_url, prefix) as (theirs, ours):
            twice_then_none = ({"session_id": {"$eq": "s2"}},) * 2 + ({"id": {"$eq": "none"}},)
            for filters in twice_then_none:
                assert await ours.delete_one(filters) == await theirs.delete_one(filters), filters
            assert ids(await ours.find({})) == ids(await theirs.find({}))

    run(check())


def test_insert_refuses_a_document_missing_schema_keys_like_parlant(database_url, prefix):
    async def check():
        one = [{"id": "a", "offset": 1}]
        async with both(database_url, prefix, docs=one, schema=Strict) as (theirs, ours):
            for collection in (theirs, ours):
                with pytest.raises(TypeError, match="missing required keys"):
                    await collection.insert_one({"id": "b"})
                with pytest.raises(TypeError, match="missing required keys"):
                    await collection.update_one({"id": {"$eq": "b"}}, {"id": "b"}, upsert=True)
            assert ids(await ours.find({})) == ["a"]

    run(check())


def test_unsupported_filter_operator_is_refused_with_its_name(database_url, prefix):
    async def check():
        async with both(database_url, prefix) as (_, ours):
            with pytest.raises(ValueError, match=r"\$regex"):
                await ours.find({"note": {"$regex": "x"}})
            with pytest.raises(ValueError, match=r"\$not"):
                await ours.find({"$not": [{"offset": {"$eq": 1}}]})

    run(check())


def test_collections_outlive_the_engine_and_unknown_ones_are_refused(database_url, prefix):
    async def check():
        async with both(database_url, prefix):
            pass
        async with sql_database(database_url, prefix) as database:
            collection = await database.get_collection("docs", Doc, identity_loader_for(Doc))
            in_order = sorted(DOCS, key=lambda d: (d["creation_utc"], d["id"]))
            assert ids(await collection.find({})) == ids(in_order)
            with pytest.raises(ValueError, match='"other" does not exist'):
                await database.get_collection("other", Doc, identity_loader_for(Doc))
            await database.delete_collection("docs")
            with pytest.raises(ValueError, match='"docs" does not exist'):
                await database.get_collection("docs", Doc, identity_loader_for(Doc))

    run(check())


def test_loader_migrates_old_documents_and_sets_aside_those_it_refuses(database_url, prefix):
    async def to_current(document):
        if document["version"] == "1.0.0":
            return None if document["offset"] == 5 else {**document, "version": "2.0.0", "kind": "migrated"}
        return document

    async def check():
        async with both(database_url, prefix):
            pass
        async with sql_database(database_url, prefix) as database:
            collection = await database.get_collection("docs", Doc, to_current)
            stored = await collection.find({})
            assert {d["version"] for d in stored} == {"2.0.0"} and {d["kind"] for d in stored} == {"migrated"}
            assert sorted(d["offset"] for d in stored) == [n for n in range(12) if n != 5]
            failed = await database.get_collection("docs_failed_migrations", Doc, identity_loader_for(Doc))
            assert [d["offset"] for d in await failed.find({})] == [5]
        async with sql_database(database_url, prefix) as database:
            # Current documents are left as they are: the loader would fail the test if it saw an old one.
            async def only_current(document):
                assert document["version"] == "2.0.0"
                return document

            collection = await database.get_collection("docs", Doc, only_current)
            assert len((await collection.find({})).items) == 11

    run(check())


def test_tables_from_a_newer_desk_are_refused(database_url, prefix):
    async def check():
        async with both(database_url, prefix) as (_, ours):
            table = ours.table.name
            async with ours._engine.begin() as conn:
                await conn.execute(sa.text(f"UPDATE {SCHEMA_TABLE} SET version = 99 WHERE table_name = :t"),
                                   {"t": table})
        async with sql_database(database_url, prefix) as database:
            with pytest.raises(StoreError, match=f"table {table} has layout version 99"):
                await database.get_collection("docs", Doc, identity_loader_for(Doc))

    run(check())


def test_event_lookups_use_the_index_on_sqlite(tmp_path):
    """A typed field in a query is textually the one in the index, so SQLite searches, not scans."""
    url = f"sqlite:///{tmp_path / 'desk.sqlite'}"

    async def check():
        async with sql_database(url, "desk") as database:
            async with SessionDocumentStore(database) as store:
                events = store._event_collection
                plans = []
                for filters, sort in [
                    ({"session_id": {"$eq": "s"}, "deleted": {"$eq": False}, "offset": {"$gte": 3}}, None),
                    ({"session_id": {"$eq": "s"}}, (("offset", SortDirection.DESC),)),
                ]:
                    query = events._first(filters, sort)
                    async with database.engine.connect() as conn:
                        sql = str(query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
                        plans.append(" ".join(row[-1] for row in await conn.exec_driver_sql(
                            f"EXPLAIN QUERY PLAN {sql}")))
        return plans

    for plan in run(check()):
        assert "USING INDEX ix_desk_events_session_id" in plan, plan


def test_database_url_picks_sqlite_under_the_home_or_postgresql_with_psycopg(tmp_path):
    assert engine_url(None, tmp_path).render_as_string() == f"sqlite+aiosqlite:///{tmp_path}/parlant.sqlite"
    assert engine_url("", tmp_path).get_backend_name() == "sqlite"
    url = engine_url("postgresql://desk:pw@127.0.0.1:5433/handoff", tmp_path)
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg", "127.0.0.1", 5433, "handoff"
    )


@pytest.mark.parametrize("value", ["mysql://root:hunter2@db/x", "not a url"])
def test_database_url_that_is_not_postgresql_or_sqlite_is_refused_with_the_fix(tmp_path, value):
    with pytest.raises(StoreError) as refused:
        engine_url(value, tmp_path)
    message = str(refused.value)
    assert "$DATABASE_URL" in message and "postgresql://user@host:port/dbname" in message
    assert "hunter2" not in message


@asynccontextmanager
async def session_store(url: str, prefix: str) -> AsyncIterator[DeskSessionStore]:
    async with sql_database(url, prefix) as database:
        async with DeskSessionStore(database, SessionSignals()) as store:
            yield store


async def say(store: DeskSessionStore, session_id, text: str, source=EventSource.CUSTOMER):
    return await store.create_event(session_id, source, EventKind.MESSAGE, "t", {"message": text})


async def status(store: DeskSessionStore, session_id, value: str, source=EventSource.HUMAN_AGENT):
    return await store.create_event(session_id, source, EventKind.STATUS, "t", {"status": value})


def test_sessions_and_events_survive_reopening_in_offset_order(database_url, prefix):
    async def check():
        async with session_store(database_url, prefix) as store:
            session = await store.create_session(customer_id="guest", agent_id="team", title="card blocked")
            for text in ("hello", "anyone?", "thanks"):
                await say(store, session.id, text)
            await say(store, session.id, "Alice here", EventSource.HUMAN_AGENT)
        async with session_store(database_url, prefix) as store:
            reopened = await store.read_session(session.id)
            events = await store.list_events(session.id)
            later = await store.list_events(session.id, min_offset=2, source=EventSource.CUSTOMER)
            next_event = await say(store, session.id, "one more")
        assert reopened.title == "card blocked"
        assert [(e.offset, e.data["message"]) for e in events] == [
            (0, "hello"), (1, "anyone?"), (2, "thanks"), (3, "Alice here")
        ]
        assert [e.data["message"] for e in later] == ["thanks"]
        assert next_event.offset == 4

    run(check())


def test_sessions_are_manual_whatever_the_caller_asks(database_url, prefix):
    async def check():
        async with session_store(database_url, prefix) as store:
            session = await store.create_session(customer_id="guest", agent_id="team", mode="auto")
            switched = await store.update_session(session.id, {"mode": "auto", "title": "kept"})
            return session.mode, switched.mode, switched.title

    assert run(check()) == ("manual", "manual", "kept")


def test_operator_status_is_kept_only_until_the_next_event(database_url, prefix):
    async def check():
        async with session_store(database_url, prefix) as store:
            session = await store.create_session(customer_id="guest", agent_id="team")
            await say(store, session.id, "hello")
            await status(store, session.id, "typing")
            await status(store, session.id, "typing")
            latest = [e.data["status"] for e in await store.list_events(session.id, kinds=[EventKind.STATUS])]
            await say(store, session.id, "Here I am.", EventSource.HUMAN_AGENT)
            after = [(e.offset, e.kind.value) for e in await store.list_events(session.id)]
            customer_status = await status(store, session.id, "typing", EventSource.CUSTOMER)
            await say(store, session.id, "ok")
            kept = [e.id for e in await store.list_events(session.id, kinds=[EventKind.STATUS])]
        assert latest == ["typing"], "the first typing signal went when the second came"
        assert after == [(0, "message"), (3, "message")], "offsets keep growing past removed statuses"
        assert kept == [customer_status.id], "only operators' statuses are passing"

    run(check())


def counting(store: DeskSessionStore) -> list[int]:
    """Count the store's list_events calls (what Parlant's listener repeats every 0.25 s)."""
    calls = [0]
    list_events = store.list_events

    async def counted(*args, **kwargs):
        calls[0] += 1
        return await list_events(*args, **kwargs)

    store.list_events = counted  # type: ignore[method-assign]
    return calls


async def until(condition, what: str) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never {what}")


def test_waiting_reader_wakes_on_the_append_it_waits_for_without_polling(database_url, prefix):
    async def check():
        async with session_store(database_url, prefix) as store:
            listener = NotifyingSessionListener(store)
            session = await store.create_session(customer_id="guest", agent_id="team")
            await say(store, session.id, "hello")
            calls = counting(store)
            waiting = asyncio.create_task(listener.wait_for_more_events(
                session.id, min_offset=1, kinds=[EventKind.MESSAGE], timeout=Timeout(600)
            ))
            await until(lambda: store.signals.waiting == 1, "waiting")
            other = await store.create_session(customer_id="guest", agent_id="team")
            await say(store, other.id, "another session")
            await status(store, session.id, "typing")  # wakes it, but it is not a message: it waits on
            await until(lambda: calls[0] == 2 and store.signals.waiting == 1, "waiting again")
            assert not waiting.done()
            await say(store, session.id, "Alice here", EventSource.HUMAN_AGENT)
            assert await waiting is True
            assert calls[0] == 3 and store.signals.waiting == 0

    run(check())


def test_waiting_reader_looks_once_more_when_its_wait_runs_out(database_url, prefix):
    async def check():
        async with session_store(database_url, prefix) as store:
            listener = NotifyingSessionListener(store)
            session = await store.create_session(customer_id="guest", agent_id="team")
            calls = counting(store)
            # A second's wait: Parlant's listener would ask the store about five times.
            assert await listener.wait_for_more_events(session.id, min_offset=0, timeout=Timeout(1)) is False
            assert calls[0] == 2 and store.signals.waiting == 0
            await say(store, session.id, "hello")
            assert await listener.wait_for_more_events(session.id, min_offset=0, timeout=Timeout(1)) is True
            with pytest.raises(ItemNotFoundError):
                await listener.wait_for_more_events("no-such-session", timeout=Timeout(1))

    run(check())


def test_sessions_in_parlants_json_file_are_imported_once(database_url, prefix, tmp_path):
    path = tmp_path / "sessions.json"

    async def check():
        async with JSONFileDocumentDatabase(StdoutLogger(LocalTracer()), path) as old:
            async with SessionDocumentStore(old) as store:
                session = await store.create_session(customer_id="guest", agent_id="team", mode="manual")
                await say(store, session.id, "kept from before")
        async with sql_database(database_url, prefix) as database:
            assert await database.import_json_file(path) == 3  # the version, the session, the event
            async with DeskSessionStore(database, SessionSignals()) as store:
                events = await store.list_events(session.id)
                later = await say(store, session.id, "and after")
        path.write_text("{}")  # a stray file next time is left alone: the tables hold documents
        async with sql_database(database_url, prefix) as database:
            assert await database.import_json_file(path) == 0
        return events, later

    events, later = run(check())
    assert [(e.offset, e.data["message"]) for e in events] == [(0, "kept from before")]
    assert later.offset == 1
    assert (tmp_path / "sessions.json.imported").is_file() and path.read_text() == "{}"
