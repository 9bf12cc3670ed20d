"""The desk's rules on Parlant's session store, and long polls that wait without polling.

Parlant's stock listener answers ``list_events(wait_for_data=N)`` by asking
the store for the session's events every 0.25 s until one arrives: each
waiting reader costs four queries a second while nothing happens, and the
chatroom keeps one reader per person at the desk. Here a reader asks the store
once, then sleeps until this process appends to its session (or its wait runs
out, when it asks once more).
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from parlant.core.async_utils import Timeout
from parlant.core.common import JSONSerializable
from parlant.core.persistence.document_database import DocumentDatabase
from parlant.core.sessions import (
    Event,
    EventId,
    EventKind,
    EventSource,
    EventUpdateParams,
    PollingSessionListener,
    Session,
    SessionDocumentStore,
    SessionId,
    SessionUpdateParams,
)

logger = logging.getLogger("desk")

MANUAL = "manual"
FOREVER = Timeout.infinite()
# Sources whose status events ("typing", "ready") the console sends; they matter only until the next event.
OPERATOR_SOURCES = (EventSource.HUMAN_AGENT, EventSource.HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT)


class SessionSignals:
    """Wake the readers waiting on a session when something is written to it in this process."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def watch(self, session_id: str) -> asyncio.Future[None]:
        """Return a future that the next write to ``session_id`` completes."""
        woken = asyncio.get_running_loop().create_future()
        self._waiters[session_id].add(woken)
        return woken

    def forget(self, session_id: str, woken: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(session_id)
        if waiters is not None:
            waiters.discard(woken)
            if not waiters:
                del self._waiters[session_id]

    def notify(self, session_id: str) -> None:
        for woken in self._waiters.pop(session_id, ()):
            if not woken.done():
                woken.set_result(None)

    @property
    def waiting(self) -> int:
        """Return how many readers are waiting, over all sessions."""
        return sum(len(waiters) for waiters in self._waiters.values())


class DeskSessionStore(SessionDocumentStore):
    """Parlant's session store, with the desk's rules.

    * Every session is manual from its first moment, whatever a caller asks:
      creating a session and then switching it would leave a window in which a
      customer message starts generation.
    * Each new or changed event wakes the readers waiting on its session.
    * An operator's "typing"/"ready" status is kept only while it is the
      session's latest event: the next event removes it, so typing (one signal
      every 2 s) never piles up in the history. The latest event always stays,
      so offsets keep growing.
    """

    def __init__(
        self, database: DocumentDatabase, signals: SessionSignals, allow_migration: bool = False
    ) -> None:
        super().__init__(database, allow_migration=allow_migration)
        self.signals = signals
        self._statuses: dict[SessionId, list[Event]] = defaultdict(list)

    async def create_session(self, *args, **kwargs) -> Session:  # type: ignore[override]
        kwargs["mode"] = MANUAL
        return await super().create_session(*args, **kwargs)

    async def update_session(self, session_id: SessionId, params: SessionUpdateParams) -> Session:
        if params.get("mode", MANUAL) != MANUAL:
            logger.warning("session %s: refused switching to mode %r", session_id, params["mode"])
            params = {**params, "mode": MANUAL}
        return await super().update_session(session_id, params)

    async def create_event(
        self,
        session_id: SessionId,
        source: EventSource,
        kind: EventKind,
        trace_id: str,
        data: JSONSerializable,
        metadata: Mapping[str, JSONSerializable] = {},
        creation_utc: datetime | None = None,
    ) -> Event:
        event = await super().create_event(session_id, source, kind, trace_id, data, metadata, creation_utc)
        await self._drop_passed_statuses(session_id, event)
        if kind == EventKind.STATUS and source in OPERATOR_SOURCES:
            self._statuses[session_id].append(event)
        self.signals.notify(session_id)
        return event

    async def _drop_passed_statuses(self, session_id: SessionId, latest: Event) -> None:
        statuses = self._statuses.pop(session_id, [])
        passed = [status for status in statuses if status.offset < latest.offset]
        if later := [status for status in statuses if status.offset > latest.offset]:
            self._statuses[session_id] = later  # appended meanwhile by a concurrent call
        if not passed:
            return
        async with self._lock.writer_lock:
            for status in passed:
                await self._event_collection.delete_one({"id": {"$eq": status.id}})

    async def update_event(
        self, session_id: SessionId, event_id: EventId, params: EventUpdateParams
    ) -> Event:
        event = await super().update_event(session_id, event_id, params)
        self.signals.notify(session_id)
        return event


class NotifyingSessionListener(PollingSessionListener):
    """Answer ``wait_for_more_events`` from the store once, then wait to be woken instead of polling.

    Only writes made through this process wake a reader; a write by another
    process sharing the database is seen when the reader's wait runs out (it
    looks once more then). Streaming-chunk waits stay Parlant's: the desk never
    streams.
    """

    def __init__(self, session_store: DeskSessionStore) -> None:
        super().__init__(session_store)
        self._store = session_store
        self._signals = session_store.signals

    async def wait_for_more_events(
        self,
        session_id: SessionId,
        kinds: Sequence[EventKind] = [],
        min_offset: int | None = None,
        source: EventSource | None = None,
        trace_id: str | None = None,
        timeout: Timeout = FOREVER,
    ) -> bool:
        await self._store.read_session(session_id)  # raises for an unknown session, as Parlant's does
        while True:
            # Watch before looking, so a write landing between the look and the wait still wakes us.
            woken = self._signals.watch(session_id)
            try:
                events = await self._store.list_events(
                    session_id, min_offset=min_offset, source=source, kinds=kinds, trace_id=trace_id
                )
                if events:
                    return True
                if timeout.expired():
                    return False
                remaining = timeout.remaining()
                try:
                    await asyncio.wait_for(woken, None if remaining == float("inf") else remaining)
                except asyncio.TimeoutError:
                    pass
            finally:
                self._signals.forget(session_id, woken)
