"""Shared state in Redis (redis-py): any number of chatroom workers on any number of machines.

Every check-and-change runs as one Lua script, so it is atomic, and reads the
clock from Redis (TIME), so workers whose clocks differ still agree. Commands
are retried a few times with growing pauses when the connection fails, which
hides a quick Redis restart; past that they raise Unavailable. Nothing here
outlives its expiry: keys carry a TTL or are pruned by the script that reads them.

Locks are fair: a waiter takes a ticket from a per-key counter and the lock
goes to the lowest ticket, so waiters from every process are served in the
order they reached Redis. A waiter keeps its ticket alive by trying again at
least every POLL seconds (sooner when a release is announced on pub/sub); a
waiter that stops (killed) loses its ticket after GRACE seconds, so it delays
those behind it by at most that. A waiter stalled longer than GRACE goes to the
back of the queue. A holder pushes its lease back every third of it for as long
as it holds the lock, so a lock outlives a holder that died (or froze) by at
most its lease, however long a live holder needs it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from .base import (
    Busy,
    SharedState,
    Subscription,
    Unavailable,
    check_hold,
    check_presence_state,
    encode_message,
    unique,
)
from .pubsub import SUBSCRIBE_WAIT, Dispatcher

logger = logging.getLogger(__name__)

# Connections one process may hold for commands; a command waits up to POOL_WAIT s for one.
POOL_SIZE = 32
POOL_WAIT = 5.0
COMMAND_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0
# A failed command is tried again this many times, pausing 0.05, 0.1, 0.2 ... up to 1 s.
RETRIES = 5
# healthy() gives Redis this long to answer, with no retry.
HEALTH_TIMEOUT = 1.0
# A lock waiter tries again at least this often; its ticket lapses after GRACE s without a try.
POLL = 0.5
GRACE = 3.0

# Shared by every script: now in milliseconds by Redis's own clock.
NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: holder, queue (ticket -> number), alive (ticket -> lapses at), counter.
# ARGV: ticket, lease ms, grace ms. Returns 0 if held now, else ms left on the
# holder's lease, or -1 if the lock is free but an earlier waiter is first.
ACQUIRE = NOW + """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return 0
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, ticket in ipairs(lapsed) do
  redis.call('ZREM', KEYS[2], ticket)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[1])
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
if not holder and redis.call('ZRANGE', KEYS[2], 0, 0)[1] == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  end
  return 0
end
for i = 2, 4 do
  redis.call('PEXPIRE', KEYS[i], 2 * tonumber(ARGV[3]))
end
if holder then
  return math.max(redis.call('PTTL', KEYS[1]), 1)
end
return -1
"""

# KEYS: holder. ARGV: ticket, channel. Only the holder releases; the queue hears of it at once.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '{}')
  return 1
end
return 0
"""

# KEYS: holder. ARGV: ticket, lease ms. Returns 1 if the lease was pushed back, 0 if the lock is not ours.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: holder, queue, alive. ARGV: ticket, channel. A waiter gives up its place.
LEAVE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('PUBLISH', ARGV[2], '{}')
end
return 1
"""

# KEYS: hits (member -> when). ARGV: limit, window ms, member. Returns -1 if allowed, else ms to wait.
HIT = NOW + """
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(tonumber(oldest[2]) + window - now, 1)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""

# KEYS: seen (name -> until), states (name -> state). ARGV: name, state or '' to keep it, ttl ms.
SEE = NOW + """
local state = ARGV[2]
if state == '' then
  local seen_until = redis.call('ZSCORE', KEYS[1], ARGV[1])
  state = 'online'
  if seen_until and tonumber(seen_until) > now then
    state = redis.call('HGET', KEYS[2], ARGV[1]) or 'online'
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], state)
return state
"""

# KEYS: seen, states. Drops whoever's ttl passed; returns name, state, name, state ...
STATES = NOW + """
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('HDEL', KEYS[2], name)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local found = {}
for _, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  table.insert(found, name)
  table.insert(found, redis.call('HGET', KEYS[2], name) or 'online')
end
return found
"""


def redacted(url: str) -> str:
    """Return ``url`` without its password (in the address or the query), fit for logs and errors."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    query = urlencode(
        [(name, "***" if name == "password" else value) for name, value in parse_qsl(parts.query)], safe="*/"
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


class RedisLink:
    """The process's connections to one Redis: a pool for commands, one pub/sub reader, key names."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.where = redacted(url)
        self.prefix = prefix
        try:
            self.pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=POOL_SIZE,
                timeout=POOL_WAIT,
                socket_timeout=COMMAND_TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
                # So that CLIENT LIST shows whose connections these are.
                client_name=prefix,
            )
        except ValueError as exc:
            raise ValueError(
                f"REDIS_URL={self.where}: {exc} (use redis://host:port/db, rediss://... or unix:///path)"
            ) from None
        self.client = redis.Redis(connection_pool=self.pool)
        self.dispatcher = Dispatcher(self._open_pubsub, self.where)
        self._health: redis.Redis | None = None

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _open_pubsub(self) -> Any:
        # Its own connection, outside the pool, failing fast: the dispatcher does its own retrying.
        kwargs = dict(self.pool.connection_kwargs, retry=Retry(NoBackoff(), 0))
        conn = self.pool.connection_class(**kwargs)
        conn.connect()
        return conn

    @contextmanager
    def reaching(self) -> Iterator[None]:
        """Turn a connection failure that outlasted the retries into Unavailable."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable(
                f"REDIS_URL={self.where}: Redis did not answer ({exc}); "
                "start redis-server there or fix REDIS_URL"
            ) from exc

    def healthy(self) -> bool:
        if self._health is None:
            self._health = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=1,
                timeout=HEALTH_TIMEOUT,
                socket_timeout=HEALTH_TIMEOUT,
                socket_connect_timeout=HEALTH_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            ))
        try:
            return bool(self._health.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self.dispatcher.close()
        self.pool.disconnect()
        if self._health is not None:
            self._health.connection_pool.disconnect()


class RedisLocks:
    """Fair locks with a lease, released only by their holder (see the module's docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._acquire = link.client.register_script(ACQUIRE)
        self._release = link.client.register_script(RELEASE)
        self._renew = link.client.register_script(RENEW)
        self._leave = link.client.register_script(LEAVE)

    def _keys(self, key: str) -> list[str]:
        holder = self._link.key("lock", key)
        return [holder, f"{holder}:queue", f"{holder}:alive", f"{holder}:counter"]

    def _channel(self, key: str) -> str:
        return self._link.key("lock-free", key)

    @contextmanager
    def hold(self, key: str, *, wait: float, lease: float) -> Iterator[None]:
        check_hold(wait, lease)
        lease_ms = max(1, round(lease * 1000))
        ticket = self._take(key, wait, lease_ms)
        released = threading.Event()
        threading.Thread(
            target=self._keep, args=(key, ticket, lease_ms, released), name=f"lock {key}", daemon=True
        ).start()
        try:
            yield
        finally:
            released.set()
            self._give_back(key, ticket)

    def _keep(self, key: str, ticket: str, lease_ms: int, released: threading.Event) -> None:
        """Push the lease back every third of it until the lock is given back (or lost)."""
        while not released.wait(lease_ms / 3000):
            try:
                with self._link.reaching():
                    if not self._renew(keys=self._keys(key)[:1], args=[ticket, lease_ms]):
                        return
            except Unavailable as exc:
                logger.warning("lock %r: could not renew its lease (%s); trying again", key, exc)

    def waiting(self, key: str) -> int:
        with self._link.reaching():
            # Tickets that lapsed still count until the next try prunes them: close enough.
            return int(self._link.client.zcard(self._keys(key)[1]))

    def _try(self, keys: list[str], ticket: str, lease_ms: int) -> int:
        with self._link.reaching():
            return int(self._acquire(keys=keys, args=[ticket, lease_ms, round(GRACE * 1000)]))

    def _take(self, key: str, wait: float, lease_ms: int) -> str:
        ticket = uuid.uuid4().hex
        keys = self._keys(key)
        deadline = time.monotonic() + wait
        if self._try(keys, ticket, lease_ms) == 0:
            return ticket
        if wait > 0 and self._wait_in_line(key, ticket, lease_ms, deadline):
            return ticket
        try:
            with self._link.reaching():
                self._leave(keys=keys[:3], args=[ticket, self._channel(key)])
        except Unavailable as exc:
            logger.warning("lock %r: could not leave its queue (%s); it lapses in %g s", key, exc, GRACE)
        raise Busy(key, wait)

    def _wait_in_line(self, key: str, ticket: str, lease_ms: int, deadline: float) -> bool:
        """Try again whenever a release is announced, or every POLL s; return True once held."""
        keys = self._keys(key)
        channel = (self._channel(key),)
        dispatcher = self._link.dispatcher
        with Subscription(channel, lambda wake: dispatcher.unsubscribe(wake, channel)) as wake:
            dispatcher.subscribe(wake, channel, min(SUBSCRIBE_WAIT, deadline - time.monotonic()))
            while True:
                # Also tried right after subscribing, so a release just before it is not missed.
                left_on_lease = self._try(keys, ticket, lease_ms)
                if left_on_lease == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                wake.get(min(POLL, remaining, left_on_lease / 1000 if left_on_lease > 0 else POLL))

    def _give_back(self, key: str, ticket: str) -> None:
        try:
            with self._link.reaching():
                released = self._release(keys=self._keys(key)[:1], args=[ticket, self._channel(key)])
        except Unavailable as exc:
            logger.warning("lock %r not released (%s); it lapses when its lease runs out", key, exc)
            return
        if not released:
            logger.warning("lock %r lapsed before its holder released it: give it a longer lease", key)


class RedisLimits:
    """Sliding-window rate limits: one sorted set of hit times per (scope, key), expiring with the window."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._hit = link.client.register_script(HIT)

    def hit(self, scope: str, key: str, limit: int, window: float) -> int | None:
        if limit <= 0:
            return None
        # A unique member: a retried call adds the same hit again instead of a second one.
        member = uuid.uuid4().hex
        with self._link.reaching():
            wait_ms = int(self._hit(
                keys=[self._link.key("rate", scope, key)],
                args=[limit, max(1, round(window * 1000)), member],
            ))
        if wait_ms < 0:
            return None
        return max(1, -(-wait_ms // 1000))

    def reset(self, scope: str, key: str) -> None:
        with self._link.reaching():
            self._link.client.delete(self._link.key("rate", scope, key))


class RedisPresence:
    """Who has been seen until when (a sorted set) and in which state (a hash); pruned when read."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._keys = [link.key("presence", "until"), link.key("presence", "state")]
        self._see = link.client.register_script(SEE)
        self._states = link.client.register_script(STATES)

    def see(self, name: str, state: str | None, ttl: float) -> str:
        check_presence_state(state)
        with self._link.reaching():
            found = self._see(keys=self._keys, args=[name, state or "", max(1, round(ttl * 1000))])
        return found.decode()

    def forget(self, name: str) -> None:
        with self._link.reaching():
            pipe = self._link.client.pipeline(transaction=True)
            pipe.zrem(self._keys[0], name)
            pipe.hdel(self._keys[1], name)
            pipe.execute()

    def states(self) -> dict[str, str]:
        with self._link.reaching():
            flat = self._states(keys=self._keys)
        return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


class RedisTyping:
    """Who types in a stay: one key per stay that expires when the typing does."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def set(self, stay_id: str, name: str, until: float) -> None:
        key = self._link.key("typing", stay_id)
        left_ms = round((until - time.time()) * 1000)
        with self._link.reaching():
            if left_ms <= 0:
                self._link.client.delete(key)
            else:
                self._link.client.set(key, json.dumps([name, until]), px=left_ms)

    def clear(self, stay_id: str) -> None:
        with self._link.reaching():
            self._link.client.delete(self._link.key("typing", stay_id))

    def get(self, stay_id: str) -> tuple[str, float] | None:
        with self._link.reaching():
            found = self._link.client.get(self._link.key("typing", stay_id))
        if found is None:
            return None
        name, until = json.loads(found)
        # Redis expires the key by its own clock; check ours too in case they differ.
        return (name, until) if until > time.time() else None


class RedisBus:
    """Publish with PUBLISH; subscriptions share the process's one pub/sub connection."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        payload = encode_message(topic, message)
        with self._link.reaching():
            self._link.client.publish(self._link.key("bus", topic), payload)

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        ordered = unique(topics)
        channels = tuple(self._link.key("bus", topic) for topic in ordered)
        dispatcher = self._link.dispatcher
        subscription = Subscription(ordered, lambda closed: dispatcher.unsubscribe(closed, channels))
        dispatcher.subscribe(subscription, channels, SUBSCRIBE_WAIT)
        return subscription


def redis_state(url: str, prefix: str) -> SharedState:
    """Return shared state kept in the Redis at ``url``, under keys and channels starting ``prefix:``."""
    link = RedisLink(url, prefix)
    return SharedState(
        backend="redis",
        locks=RedisLocks(link),
        limits=RedisLimits(link),
        presence=RedisPresence(link),
        typing=RedisTyping(link),
        bus=RedisBus(link),
        healthy=link.healthy,
        close=link.close,
    )
