"""The desk's store: time to append an event as sessions pile up, and the cost of idle long polls.

Run: .venv/bin/python -m bench.desk_store [--sizes 0,1000,10000] [--postgres] [--waiters 1000]

1. Appending: Parlant's session store on its local JSON file (what the desk
   used before) against the same store on the desk's SQL tables, with 0, 1,000
   and 10,000 stored sessions (each with a transcript in its metadata and 8
   events, like a real handoff). Store classes are called directly, no HTTP.
   ``--postgres`` adds a column for a throwaway PostgreSQL (Debian's binaries).
2. Waiting: what idle ``list_events(wait_for_data=…)`` readers cost, one per
   session, with Parlant's polling listener and with the desk's notifying one:
   CPU, store reads per second, and how long someone else's append takes
   meanwhile.

Figures depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.measure import percentile
from tests.test_desk_store import counting

TRANSCRIPT_LINES = 12
EVENTS_PER_SESSION = 8
# Each timed cell stops after this many appends or this many seconds, whichever comes first.
MOST_APPENDS = 40
CELL_SECONDS = 15.0
WARM_UP = 2


async def template() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return one realistic session document and its event documents, made by Parlant's own store."""
    from parlant.adapters.db.transient import TransientDocumentDatabase
    from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore

    database = TransientDocumentDatabase()
    async with SessionDocumentStore(database) as store:
        transcript = [
            {"role": "user" if n % 2 else "bot", "host": "helpdesk", "text": f"line {n} of the chat " * 3}
            for n in range(TRANSCRIPT_LINES)
        ]
        session = await store.create_session(
            customer_id="guest", agent_id="support_team", mode="manual", title="Helpdesk: my card is blocked",
            metadata={"conversation_id": "c" * 32, "from_host": "helpdesk", "reason": "card blocked",
                      "transcript": transcript},
        )
        for n in range(EVENTS_PER_SESSION):
            source = EventSource.CUSTOMER if n % 2 == 0 else EventSource.HUMAN_AGENT
            await store.create_event(session.id, source, EventKind.MESSAGE, "t",
                                     {"message": f"message {n} in this conversation", "participant": {}})
        sessions = (await store._session_collection.find({})).items
        events = (await store._event_collection.find({})).items
    return dict(sessions[0]), [dict(event) for event in events]


def copies(count: int, session: dict[str, Any], events: list[dict[str, Any]]):
    """Return ``count`` copies of the template with their own ids and creation times."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sessions, all_events = [], []
    for n in range(count):
        created = (start + timedelta(seconds=n)).isoformat()
        session_id = f"s{n:07d}"
        sessions.append({**session, "id": session_id, "creation_utc": created})
        all_events += [
            {**event, "id": f"e{n:07d}_{i}", "session_id": session_id, "creation_utc": created}
            for i, event in enumerate(events)
        ]
    return sessions, all_events


@asynccontextmanager
async def json_store(folder: Path, sessions, events) -> AsyncIterator[Any]:
    """Parlant's session store on its local JSON file, holding ``sessions`` and ``events``."""
    from parlant.adapters.db.json_file import JSONFileDocumentDatabase
    from parlant.core.loggers import StdoutLogger
    from parlant.core.sessions import SessionDocumentStore
    from parlant.core.tracer import LocalTracer

    path = folder / "sessions.json"
    logger = StdoutLogger(LocalTracer())
    async with JSONFileDocumentDatabase(logger, path) as database:  # writes the store's version document
        async with SessionDocumentStore(database):
            pass
    data = json.loads(path.read_text())
    data["sessions"], data["events"] = sessions, events
    path.write_text(json.dumps(data))
    async with JSONFileDocumentDatabase(logger, path) as database:
        async with SessionDocumentStore(database) as store:
            yield store


@asynccontextmanager
async def sql_store(url: str, sessions, events, make_store: Callable[[Any], Any] | None = None):
    """The same store on the desk's SQL tables (a fresh set), holding ``sessions`` and ``events``."""
    from parlant.core.sessions import SessionDocumentStore

    from desk.store import SQLDocumentDatabase, create_engine, engine_url, sql_name

    engine = create_engine(engine_url(url, Path("/unused")))
    prefix = sql_name("bench", f"{random.getrandbits(40):x}")
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        database = await stack.enter_async_context(SQLDocumentDatabase(engine, prefix))
        store = await stack.enter_async_context((make_store or SessionDocumentStore)(database))
        async with engine.begin() as conn:
            for collection, documents in (
                (store._session_collection, sessions), (store._event_collection, events)
            ):
                for start in range(0, len(documents), 5000):
                    chunk = documents[start:start + 5000]
                    await conn.execute(collection.table.insert(), [{"doc": document} for document in chunk])
        async with engine.begin() as conn:
            # Statistics as a database that grew to this size would have (PostgreSQL's autovacuum keeps
            # them); without them PostgreSQL walks a freshly filled table in row order to find one id.
            await conn.execute(sa.text("ANALYZE"))
        yield store


async def append_times(store) -> list[float]:
    """Append events to a new session until MOST_APPENDS or CELL_SECONDS; return each append's duration."""
    from parlant.core.sessions import EventKind, EventSource

    session = await store.create_session(customer_id="guest", agent_id="support_team", mode="manual")

    async def append() -> float:
        before = time.perf_counter()
        data = {"message": "Checking your card now.", "participant": {"display_name": "Alice"}}
        await store.create_event(session.id, EventSource.HUMAN_AGENT, EventKind.MESSAGE, "t", data)
        return time.perf_counter() - before

    # The first appends also warm connections and statement caches; they are not timed.
    for _ in range(WARM_UP):
        await append()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < MOST_APPENDS and (len(times) < 3 or time.perf_counter() - started < CELL_SECONDS):
        times.append(await append())
    return times


def cell(times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{statistics.median(ms):9.2f} ms (p90 {percentile(ms, 0.9):8.2f}, n={len(ms)})"


async def appending(sizes: list[int], postgres_url: str | None) -> None:
    session, events = await template()
    columns = ["JSON file (before)", "SQLite (desk)"] + (["PostgreSQL (desk)"] if postgres_url else [])
    print("\nTime to append one event (median, p90 over n appends)")
    print(f"{'stored sessions':>16}  " + "  ".join(f"{name:<34}" for name in columns))
    medians: dict[str, list[float]] = {name: [] for name in columns}
    for size in sizes:
        seeded = copies(size, session, events)
        row = []
        with tempfile.TemporaryDirectory(prefix="desk-bench-") as folder:
            stores = [
                json_store(Path(folder), *seeded), sql_store(f"sqlite:///{folder}/desk.sqlite", *seeded)
            ]
            if postgres_url:
                stores.append(sql_store(postgres_url, *seeded))
            for name, opened in zip(columns, stores):
                async with opened as store:
                    times = await append_times(store)
                medians[name].append(statistics.median(times))
                row.append(cell(times))
        print(f"{size:>16,}  " + "  ".join(f"{text:<34}" for text in row), flush=True)
    if len(sizes) > 1:
        ratios = "  ".join(f"{medians[name][-1] / medians[name][0]:<34.1f}" for name in columns)
        print(f"{f'{sizes[-1]:,} / {sizes[0]:,}':>16}  {ratios}")


async def waiting(count: int, window: float, url: str) -> None:
    """Hold ``count`` idle readers with each listener; print what they cost while nothing happens."""
    from parlant.core.async_utils import Timeout
    from parlant.core.sessions import EventKind, EventSource, PollingSessionListener

    from desk.sessions import DeskSessionStore, NotifyingSessionListener, SessionSignals

    session, events = await template()
    seeded = copies(count, session, events)
    print(f"\n{count:,} idle readers (list_events with wait_for_data), one per session, SQLite; "
          f"measured over {window:.0f} s once all wait")
    for name, make_listener in (
        ("Parlant's polling listener", PollingSessionListener),
        ("desk's notifying listener", NotifyingSessionListener),
    ):
        def desk_store(database):
            return DeskSessionStore(database, SessionSignals())

        async with sql_store(url, *seeded, make_store=desk_store) as store:
            listener = make_listener(store)
            other = await store.create_session(customer_id="guest", agent_id="support_team", mode="manual")
            calls = counting(store)
            started = time.perf_counter()
            readers = [
                asyncio.create_task(listener.wait_for_more_events(
                    document["id"], min_offset=EVENTS_PER_SESSION, timeout=Timeout(window + 600)
                ))
                for document in seeded[0]
            ]
            while calls[0] < count:
                await asyncio.sleep(0.05)
            settled = time.perf_counter() - started
            cpu, wall, reads = time.process_time(), time.perf_counter(), calls[0]
            appends = []
            for _ in range(10):
                # Someone else's conversation goes on meanwhile: how long does their append take?
                message = EventKind.MESSAGE
                before = time.perf_counter()
                await store.create_event(other.id, EventSource.CUSTOMER, message, "t", {"message": "?"})
                appends.append(time.perf_counter() - before)
                await asyncio.sleep(window / 10)
            cpu, wall, reads = time.process_time() - cpu, time.perf_counter() - wall, calls[0] - reads
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        print(f"  {name:<28} {cpu / wall:4.2f} cores, {reads / wall:6.0f} store reads/s; "
              f"an append meanwhile {cell(appends)}; all {count:,} waiting after {settled:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,1000,10000", help="stored sessions, one row each")
    parser.add_argument("--postgres", action="store_true", help="add a column for a throwaway PostgreSQL")
    parser.add_argument("--waiters", type=int, default=1000, help="idle readers to hold (0 skips)")
    parser.add_argument("--window", type=float, default=10, help="seconds to watch idle readers")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as folder:
        if args.postgres:
            from tests.postgres import running_postgres

            with running_postgres() as url:
                asyncio.run(appending(sizes, url))
        else:
            asyncio.run(appending(sizes, None))
        if args.waiters:
            asyncio.run(waiting(args.waiters, args.window, f"sqlite:///{folder}/waiting.sqlite"))


if __name__ == "__main__":
    main()
