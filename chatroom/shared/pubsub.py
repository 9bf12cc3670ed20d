"""One Redis pub/sub connection per process, shared by every subscription in it.

A background thread (a greenlet once gevent has patched threading) reads the
connection and hands each message to the local subscriptions of its channel.
A channel is subscribed in Redis while at least one local subscription wants
it and unsubscribed when the last one closes, so thousands of open streams
cost one connection and one Redis subscriber per channel.

When the connection drops (Redis restarted, network), the reader reconnects
with growing pauses, subscribes every wanted channel again and, once Redis
confirms a channel, gives each of its subscriptions a resync: messages
published meanwhile are gone, so readers re-read their state.

The reader starts on first use, in the process that uses it: gunicorn loads
the app and then forks its workers, and a thread does not survive a fork.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .base import Subscription

logger = logging.getLogger(__name__)

# Seconds of silence on the connection before a PING; no answer within as long again and it is dead.
HEARTBEAT = 15.0
# Longest a subscribe() waits for Redis to confirm before returning (the subscription resyncs later).
SUBSCRIBE_WAIT = 3.0
# Pauses between reconnection attempts: doubling from the first to the last.
BACKOFF_FIRST = 0.05
BACKOFF_LAST = 2.0


class _Channel:
    """Local subscriptions of one Redis channel and whether Redis has confirmed it."""

    __slots__ = ("subscriptions", "confirmed", "resync_on_confirm")

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self.confirmed = threading.Event()
        # Set when messages may have been lost before the (next) confirmation.
        self.resync_on_confirm = False


class Dispatcher:
    """Reads the process's pub/sub connection and fans messages out to local subscriptions."""

    def __init__(self, open_connection: Callable[[], Any], where: str) -> None:
        # open_connection returns a connected redis-py Connection or raises.
        self._open_connection = open_connection
        self._where = where
        self._start_afresh()

    def _start_afresh(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        # Redis answers (un)subscribe commands in order: per channel, whom each answer confirms.
        self._answers: dict[str, deque[_Channel | None]] = {}
        self._conn: Any = None
        self._write_failed = False
        # True while Redis is known to be unreachable: subscribe() then returns at once.
        self._away = False
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def _in_this_process(self) -> None:
        if self._pid != os.getpid():
            # Forked: the parent's reader and connection stayed with the parent. Its socket
            # is left alone (closing it here would cut the parent's subscriptions).
            self._start_afresh()

    def subscribe(self, subscription: Subscription, channels: tuple[str, ...], wait: float) -> None:
        """Deliver ``channels`` to ``subscription``; wait up to ``wait`` s for Redis to confirm them."""
        self._in_this_process()
        with self._lock:
            if self._stopping.is_set():
                raise RuntimeError(f"shared state for {self._where} is closed; connect() again")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shared-pubsub", daemon=True)
                self._thread.start()
            wanted, new = [], []
            for name in channels:
                channel = self._channels.get(name)
                if channel is None:
                    channel = self._channels[name] = _Channel()
                    new.append(name)
                channel.subscriptions.add(subscription)
                wanted.append(channel)
            if new:
                self._send("SUBSCRIBE", *new)
            if self._away:
                wait = 0.0  # Resync once Redis is back, rather than stall the caller now.
        deadline = time.monotonic() + wait
        for channel in wanted:
            channel.confirmed.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for channel in wanted:
                if not channel.confirmed.is_set():
                    channel.resync_on_confirm = True

    def unsubscribe(self, subscription: Subscription, channels: tuple[str, ...]) -> None:
        """Stop delivering to ``subscription``; unsubscribe channels nobody here wants any more."""
        if self._pid != os.getpid():
            return
        with self._lock:
            gone = []
            for name in channels:
                channel = self._channels.get(name)
                if channel is None:
                    continue
                channel.subscriptions.discard(subscription)
                if not channel.subscriptions:
                    del self._channels[name]
                    gone.append(name)
            if gone:
                self._send("UNSUBSCRIBE", *gone)

    def close(self) -> None:
        """Close the connection and stop the reader."""
        self._in_this_process()
        with self._lock:
            self._stopping.set()
            conn, self._conn = self._conn, None
            thread = self._thread
        if conn is not None:
            conn.disconnect()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=HEARTBEAT)

    def _send(self, command: str, *names: str) -> None:
        """Write a command on the shared connection (caller holds the lock); the reader sees failures."""
        conn = self._conn
        if conn is None or self._write_failed:
            return  # The reader subscribes every wanted channel when it reconnects.
        if command in ("SUBSCRIBE", "UNSUBSCRIBE"):
            for name in names:
                target = self._channels.get(name) if command == "SUBSCRIBE" else None
                self._answers.setdefault(name, deque()).append(target)
        try:
            conn.send_command(command, *names, check_health=False)
        except Exception as exc:  # noqa: BLE001 - any failure means the same: reconnect
            logger.debug("pub/sub write to %s failed: %s", self._where, exc)
            self._write_failed = True

    def _run(self) -> None:
        pause = BACKOFF_FIRST
        told = False  # One warning per outage, not one per attempt.
        while not self._stopping.is_set():
            try:
                conn = self._open_connection()
            except Exception as exc:  # noqa: BLE001 - whatever stops a connection, try again later
                (logger.debug if told else logger.warning)(
                    "pub/sub: cannot reach Redis at %s (%s); retrying until it answers", self._where, exc
                )
                told = self._away = True
                self._stopping.wait(pause)
                pause = min(pause * 2, BACKOFF_LAST)
                continue
            with self._lock:
                if self._stopping.is_set():
                    conn.disconnect()
                    return
                self._conn, self._write_failed, self._answers = conn, False, {}
                if self._channels:
                    self._send("SUBSCRIBE", *self._channels)
                was_away, self._away = self._away, False
            if was_away:
                logger.info("pub/sub: connected to Redis at %s again; subscriptions will resync", self._where)
            told = False
            try:
                if self._read(conn):
                    pause = BACKOFF_FIRST
            except Exception as exc:  # noqa: BLE001 - a lost connection in any form
                if not self._stopping.is_set():
                    logger.warning("pub/sub: lost Redis at %s (%s); reconnecting", self._where, exc)
            with self._lock:
                if self._conn is conn:
                    self._conn = None
                self._away = True
                for channel in self._channels.values():
                    channel.confirmed.clear()
                    channel.resync_on_confirm = True
            conn.disconnect()
            self._stopping.wait(pause)
            pause = min(pause * 2, BACKOFF_LAST)

    def _read(self, conn: Any) -> bool:
        """Read and dispatch until the connection fails (raises) or closes (returns whether it answered)."""
        answered = pinged = False
        while True:
            with self._lock:
                if self._stopping.is_set() or self._conn is not conn:
                    return answered
                if self._write_failed:
                    raise ConnectionError("a write on the pub/sub connection failed")
            if not conn.can_read(timeout=HEARTBEAT):
                if pinged:
                    raise TimeoutError(f"no answer to PING within {HEARTBEAT:g} s")
                with self._lock:
                    self._send("PING")
                pinged = True
                continue
            # push_request: under RESP3 pub/sub messages are pushes, handed to us only when asked for.
            reply = conn.read_response(disconnect_on_error=False, push_request=True)
            answered, pinged = True, False
            self._dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return  # PONG outside subscribed mode
        kind = _text(reply[0])
        name = _text(reply[1])
        if kind == "message":
            with self._lock:
                channel = self._channels.get(name)
                targets = list(channel.subscriptions) if channel is not None else []
            if targets:
                self._deliver(name, reply[2], targets)
        elif kind in ("subscribe", "unsubscribe"):
            targets = []
            with self._lock:
                waiting = self._answers.get(name)
                channel = waiting.popleft() if waiting else None
                if waiting is not None and not waiting:
                    del self._answers[name]
                if kind == "subscribe" and channel is not None and self._channels.get(name) is channel:
                    channel.confirmed.set()
                    if channel.resync_on_confirm:
                        channel.resync_on_confirm = False
                        targets = list(channel.subscriptions)
            for subscription in targets:
                subscription.resync()

    def _deliver(self, name: str, payload: bytes, targets: list[Subscription]) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            logger.warning("pub/sub: dropped a message on %s that is not a JSON object: %.80r", name, payload)
            return
        for subscription in targets:
            subscription.deliver(message)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
