"""Read a live stream (Server-Sent Events) in tests, from Flask's test client or a real server."""
from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    kind: str
    data: Any
    id: int | None = None


def parse(chunks: Iterable[bytes]) -> Iterator[Event]:
    """Turn the bytes of a stream into events (comments and the retry line are skipped)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if not line or line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
            if "data" in fields:
                event_id = int(fields["id"]) if "id" in fields else None
                yield Event(fields.get("event", "message"), json.loads(fields["data"]), event_id)


class Stream:
    """A stream read in the background; ``next`` waits for the next event of the kinds asked for."""

    def __init__(self, chunks: Iterable[bytes], close=None) -> None:
        self.events: queue.Queue[Event | None] = queue.Queue()
        self._close = close
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._pump, args=(chunks,), daemon=True)
        self.thread.start()

    def _pump(self, chunks: Iterable[bytes]) -> None:
        try:
            for event in parse(self._until_closed(chunks)):
                self.events.put(event)
        except Exception:  # noqa: BLE001 - a closed stream ends the pump
            pass
        finally:
            self.events.put(None)
            # Closed from the thread that reads it: a generator can't be closed while it runs.
            if self._close is not None:
                self._close()

    def _until_closed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        # Every heartbeat brings a chunk, so a closed stream stops within one.
        for chunk in chunks:
            if self.closed.is_set():
                return
            yield chunk

    def next(self, *kinds: str, timeout: float = 20) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kinds or 'event'} within {timeout} s"
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            assert event is not None, "the stream ended"
            if not kinds or event.kind in kinds:
                return event

    def next_where(self, kind: str, predicate, timeout: float = 20) -> Event:
        """Wait for the next event of ``kind`` whose data satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(kind, timeout=max(0.01, deadline - time.monotonic()))
            if predicate(event.data):
                return event

    def messages_until(self, predicate, timeout: float = 20) -> list[dict]:
        """Collect message events until one satisfies ``predicate``; return them all."""
        seen = []
        while True:
            event = self.next("message", timeout=timeout)
            seen.append({**event.data, "event_id": event.id})
            if predicate(event.data):
                return seen

    def close(self) -> None:
        self.closed.set()


def open_test_stream(client, path: str, headers: dict[str, str] | None = None) -> Stream:
    """Open a stream through Flask's test client."""
    response = client.get(path, headers=headers or {}, buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    return Stream(response.response, close=response.close)


def open_stream(session, url: str, headers: dict[str, str] | None = None) -> Stream:
    """Open a stream on a running server with a requests session."""
    response = session.get(url, headers=headers or {}, stream=True, timeout=(10, 60))
    assert response.status_code == 200, response.text
    return Stream(response.iter_content(chunk_size=None), close=response.close)
