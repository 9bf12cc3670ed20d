"""Shared state on both backends: kept in this process, and in a real redis-server started for the tests."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from chatroom import shared
from chatroom.shared import redis_backend
from handoff.config import REPO_ROOT
from tests.stack import free_port

REDIS_SERVER = shutil.which("redis-server")
START_TIMEOUT = 30.0
# Generous: the machine is shared, and a deadline only bounds how long a failure takes to show.
DEADLINE = 30.0


def wait_until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:g} s waiting until {what}")
        time.sleep(0.01)


class RedisServer:
    """A throwaway redis-server on a free loopback port, its files in ``directory``; nothing saved."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the server writes to it until stopped
        with log:
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                 "--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if self.process.poll() is not None:
                    pytest.fail(f"redis-server exited with {self.process.returncode}; see {self.directory}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"redis-server did not answer within {START_TIMEOUT:g} s")
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """Stop at once, as a crash would: SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


def require_redis_server() -> None:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): Redis backend not tested")


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, for tests that kill it."""
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """Keys and channels of one test, apart from every other test's on the shared server."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    """Each backend in turn: None keeps state in this process; else the session's redis-server."""
    return request.getfixturevalue("redis_server").url if request.param == "redis" else None


@pytest.fixture
def make_state(redis_url: str | None, prefix: str) -> Iterator[Callable[[], shared.SharedState]]:
    """Make the shared state one worker process would have; every Redis one made reaches one store."""
    made: list[shared.SharedState] = []

    def make() -> shared.SharedState:
        state = shared.connect(redis_url, prefix=prefix)
        made.append(state)
        return state

    yield make
    for state in made:
        state.close()


@pytest.fixture
def state(make_state: Callable[[], shared.SharedState]) -> shared.SharedState:
    return make_state()


Workers = tuple[shared.SharedState, shared.SharedState]


@pytest.fixture
def two_workers(make_state: Callable[[], shared.SharedState]) -> Workers:
    """Two worker processes' shared state; kept in process there is only one worker, so both are it."""
    first = make_state()
    return (first, first) if first.backend == "memory" else (first, make_state())


def run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not [thread for thread in threads if thread.is_alive()]
    if errors:
        raise errors[0]


# Locks


def test_connect_picks_the_backend_from_the_url(state: shared.SharedState) -> None:
    assert state.backend in ("memory", "redis")
    assert state.healthy() is True


def test_connect_refuses_a_url_that_is_not_redis() -> None:
    with pytest.raises(ValueError, match=r"REDIS_URL=http://127\.0\.0\.1:1: .*redis://host:port/db"):
        shared.connect("http://127.0.0.1:1")


def test_unreachable_redis_is_unavailable_and_the_error_hides_the_password() -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    state = shared.connect(url)
    try:
        assert state.healthy() is False
        with pytest.raises(shared.Unavailable) as unavailable:
            state.limits.hit("client", "10.0.0.1", 5, 60)
        shown = url.replace("secret", "***")
        assert str(unavailable.value).startswith(f"REDIS_URL={shown}: Redis did not answer")
        assert "secret" not in str(unavailable.value)
    finally:
        state.close()


def test_lock_lets_one_holder_in_at_a_time(state: shared.SharedState) -> None:
    inside, most_inside, turns = [0], [0], []
    guard = threading.Lock()

    def take_turns(index: int) -> None:
        for turn in range(10):
            with state.locks.hold("conversation-1", wait=DEADLINE, lease=DEADLINE):
                with guard:
                    inside[0] += 1
                    most_inside[0] = max(most_inside[0], inside[0])
                # A turn takes a moment, so that a second holder would overlap it.
                time.sleep(0.001)
                with guard:
                    inside[0] -= 1
                    turns.append((index, turn))

    run_threads(6, take_turns)
    assert most_inside[0] == 1
    assert sorted(turns) == [(index, turn) for index in range(6) for turn in range(10)]


def test_lock_serves_waiters_in_arrival_order(state: shared.SharedState) -> None:
    served: list[int] = []

    def take_turn(index: int) -> None:
        with state.locks.hold("conversation-1", wait=DEADLINE, lease=DEADLINE):
            served.append(index)

    with state.locks.hold("conversation-1", wait=0, lease=DEADLINE):
        threads = []
        for index in range(5):
            thread = threading.Thread(target=take_turn, args=(index,))
            thread.start()
            threads.append(thread)
            wait_until(lambda index=index: state.locks.waiting("conversation-1") == index + 1,
                       f"waiter {index} is queued")

    for thread in threads:
        thread.join(DEADLINE)
    assert served == [0, 1, 2, 3, 4]
    assert state.locks.waiting("conversation-1") == 0


def test_lock_raises_busy_once_the_wait_is_over(state: shared.SharedState) -> None:
    with state.locks.hold("conversation-1", wait=0, lease=DEADLINE):
        for wait in (0, 0.2):
            with pytest.raises(shared.Busy) as busy:
                with state.locks.hold("conversation-1", wait=wait, lease=DEADLINE):
                    pytest.fail("a second holder got in")
            assert (busy.value.key, busy.value.wait) == ("conversation-1", wait)
            assert state.locks.waiting("conversation-1") == 0
        # Other conversations are not held up.
        with state.locks.hold("conversation-2", wait=0, lease=DEADLINE):
            pass
    with state.locks.hold("conversation-1", wait=0, lease=DEADLINE):
        pass


def test_lock_refuses_a_lease_or_wait_out_of_range(state: shared.SharedState) -> None:
    with pytest.raises(ValueError, match="lease must be more than 0"):
        with state.locks.hold("conversation-1", wait=1, lease=0):
            pass
    with pytest.raises(ValueError, match="wait must be 0 or more"):
        with state.locks.hold("conversation-1", wait=-1, lease=1):
            pass


HOLD_THEN_HANG = """
import sys
from chatroom import shared
state = shared.connect(sys.argv[1], prefix=sys.argv[2])
held = state.locks.hold("conversation-1", wait=float(sys.argv[3]), lease=float(sys.argv[4]))
held.__enter__()
print("held", flush=True)
sys.stdin.read()
"""


def holder_process(url: str, prefix: str, wait: float, lease: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD_THEN_HANG, url, prefix, str(wait), str(lease)],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )


def test_redis_lock_of_a_killed_holder_lapses_with_its_lease(redis_server: RedisServer, prefix: str) -> None:
    state = shared.connect(redis_server.url, prefix=prefix)
    holder = holder_process(redis_server.url, prefix, wait=0, lease=6)
    try:
        assert holder.stdout.readline() == "held\n"
        holder.kill()
        holder.wait()
        # Its connection is gone, its lease is not: the lock stays taken until the lease runs out.
        with pytest.raises(shared.Busy):
            with state.locks.hold("conversation-1", wait=0, lease=5):
                pass
        with state.locks.hold("conversation-1", wait=DEADLINE, lease=5):
            assert redis_server.admin().get(f"{prefix}:lock:conversation-1") is not None
    finally:
        holder.kill()
        holder.wait()
        state.close()


def test_redis_lock_of_a_live_holder_outlasts_its_lease(redis_server: RedisServer, prefix: str) -> None:
    state = shared.connect(redis_server.url, prefix=prefix)
    try:
        with state.locks.hold("conversation-1", wait=0, lease=0.3):
            # Five leases long: the holder keeps pushing its lease back.
            with pytest.raises(shared.Busy):
                with state.locks.hold("conversation-1", wait=1.5, lease=0.3):
                    pass
    finally:
        state.close()


def test_redis_lock_lapsed_is_not_released_by_its_late_holder(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A holder that froze: it cannot push its lease back.
    monkeypatch.setattr(redis_backend.RedisLocks, "_keep", lambda *args: None)
    state = shared.connect(redis_server.url, prefix=prefix)
    try:
        late = state.locks.hold("conversation-1", wait=0, lease=0.2)
        late.__enter__()
        admin = redis_server.admin()
        wait_until(lambda: not admin.exists(f"{prefix}:lock:conversation-1"), "the lease ran out")
        with state.locks.hold("conversation-1", wait=0, lease=DEADLINE):
            late.__exit__(None, None, None)
            with pytest.raises(shared.Busy):
                with state.locks.hold("conversation-1", wait=0, lease=DEADLINE):
                    pass
        assert "lapsed before its holder released it" in caplog.text
    finally:
        state.close()


def test_redis_lock_waiter_killed_in_the_queue_loses_its_place(
    redis_server: RedisServer, prefix: str
) -> None:
    state = shared.connect(redis_server.url, prefix=prefix)
    served = threading.Event()
    try:
        with state.locks.hold("conversation-1", wait=0, lease=DEADLINE):
            waiter = holder_process(redis_server.url, prefix, wait=DEADLINE, lease=5)
            wait_until(lambda: state.locks.waiting("conversation-1") == 1, "the other process is queued")
            waiter.kill()
            waiter.wait()

            def wait_in_line() -> None:
                with state.locks.hold("conversation-1", wait=DEADLINE, lease=5):
                    served.set()

            thread = threading.Thread(target=wait_in_line)
            thread.start()
            wait_until(lambda: state.locks.waiting("conversation-1") == 2, "a second waiter is queued")
        thread.join(DEADLINE)
        assert served.is_set()
    finally:
        state.close()


# Rate limits


def test_limit_allows_up_to_the_limit_then_says_how_long_to_wait(state: shared.SharedState) -> None:
    assert [state.limits.hit("conversation", "c1", 3, 60) for _ in range(3)] == [None, None, None]
    retry_after = state.limits.hit("conversation", "c1", 3, 60)
    assert isinstance(retry_after, int) and 1 <= retry_after <= 60
    # Other keys and other scopes count apart.
    assert state.limits.hit("conversation", "c2", 3, 60) is None
    assert state.limits.hit("client", "c1", 3, 60) is None


def test_limit_reset_starts_a_fresh_window(state: shared.SharedState) -> None:
    assert state.limits.hit("typing", "stay-1:ann", 1, 60) is None
    assert 1 <= state.limits.hit("typing", "stay-1:ann", 1, 60) <= 60
    state.limits.reset("typing", "stay-1:ann")
    assert state.limits.hit("typing", "stay-1:ann", 1, 60) is None


def test_limit_zero_is_no_limit(state: shared.SharedState) -> None:
    assert {state.limits.hit("client", "10.0.0.1", 0, 60) for _ in range(50)} == {None}


def test_limit_window_slides(state: shared.SharedState) -> None:
    assert state.limits.hit("conversation", "c1", 1, 0.3) is None
    assert state.limits.hit("conversation", "c1", 1, 0.3) == 1
    wait_until(lambda: state.limits.hit("conversation", "c1", 1, 0.3) is None, "the window has moved on")


# Presence


def test_presence_lists_whoever_was_seen_within_their_ttl(state: shared.SharedState) -> None:
    assert state.presence.see("alice", "online", 60) == "online"
    assert state.presence.see("bob", "away", 60) == "away"
    state.presence.see("carol", "online", 0.2)
    wait_until(lambda: "carol" not in state.presence.states(), "carol's ttl has passed")
    assert state.presence.states() == {"alice": "online", "bob": "away"}
    state.presence.forget("bob")
    assert state.presence.states() == {"alice": "online"}


def test_presence_seen_again_keeps_the_chosen_state_until_it_lapses(state: shared.SharedState) -> None:
    state.presence.see("alice", "away", 60)
    assert state.presence.see("alice", None, 60) == "away"
    assert state.presence.see("bob", None, 60) == "online"
    state.presence.see("carol", "away", 0.2)
    wait_until(lambda: "carol" not in state.presence.states(), "carol's ttl has passed")
    assert state.presence.see("carol", None, 60) == "online"
    with pytest.raises(ValueError, match="one of online, away"):
        state.presence.see("alice", "offline", 60)


# Typing


def test_typing_shows_until_its_time_then_is_gone(state: shared.SharedState) -> None:
    until = time.time() + 60
    state.typing.set("stay-1", "Ann", until)
    assert state.typing.get("stay-1") == ("Ann", until)
    state.typing.set("stay-2", "Bob", time.time() + 0.2)
    wait_until(lambda: state.typing.get("stay-2") is None, "Bob's typing has run out")
    state.typing.set("stay-3", "Cy", time.time() - 1)
    assert state.typing.get("stay-3") is None
    state.typing.clear("stay-1")
    assert state.typing.get("stay-1") is None


def test_redis_keys_of_typing_and_limits_expire_with_them(redis_server: RedisServer, prefix: str) -> None:
    state = shared.connect(redis_server.url, prefix=prefix)
    admin = redis_server.admin()
    try:
        state.typing.set("stay-1", "Ann", time.time() + 60)
        assert 0 < admin.pttl(f"{prefix}:typing:stay-1") <= 60_000
        state.limits.hit("client", "10.0.0.1", 5, 30)
        assert 0 < admin.pttl(f"{prefix}:rate:client:10.0.0.1") <= 30_000
    finally:
        state.close()


# Bus


def read_until(subscription: shared.Subscription, last: dict) -> list[dict]:
    """Return every message up to and including ``last``."""
    got = []
    while not got or got[-1] != last:
        message = subscription.get(DEADLINE)
        assert message is not None, f"nothing more after {got[-3:]}"
        got.append(message)
    return got


def test_bus_gives_every_subscriber_in_every_worker_each_message_once_in_order(
    two_workers: Workers,
) -> None:
    first, second = two_workers
    room = [worker.bus.subscribe(["room-1"]) for worker in (first, second) for _ in range(20)]
    both = second.bus.subscribe(["room-1", "room-2"])
    elsewhere = first.bus.subscribe(["room-2"])
    for n in range(50):
        (first if n % 2 else second).bus.publish("room-1", {"n": n})
    first.bus.publish("room-2", {"n": "other"})
    first.bus.publish("room-1", {"n": "end"})
    expected = [{"n": n} for n in range(50)] + [{"n": "end"}]
    for subscription in room:
        assert read_until(subscription, {"n": "end"}) == expected
    assert read_until(both, {"n": "end"}) == expected[:50] + [{"n": "other"}, {"n": "end"}]
    assert elsewhere.get(DEADLINE) == {"n": "other"}
    for subscription in [*room, both, elsewhere]:
        subscription.close()


def test_bus_delivers_only_what_is_published_after_subscribing(
    two_workers: Workers,
) -> None:
    first, second = two_workers
    first.bus.publish("room-1", {"n": "before"})
    with second.bus.subscribe(["room-1"]) as subscription:
        first.bus.publish("room-1", {"n": "after"})
        assert subscription.get(DEADLINE) == {"n": "after"}
        assert subscription.get(0) is None


def test_bus_closed_subscription_gets_nothing(state: shared.SharedState) -> None:
    subscription = state.bus.subscribe(["room-1"])
    subscription.close()
    state.bus.publish("room-1", {"n": 1})
    assert subscription.get(0) is None
    subscription.close()


def test_bus_refuses_what_a_reader_could_not_take(state: shared.SharedState) -> None:
    with pytest.raises(ValueError, match="reserved"):
        state.bus.publish("room-1", {"type": "resync"})
    with pytest.raises(TypeError):
        state.bus.publish("room-1", {"when": object()})
    with pytest.raises(TypeError, match="list of topics"):
        state.bus.subscribe("room-1")


def test_bus_reader_too_far_behind_gets_one_resync_for_what_it_missed(state: shared.SharedState) -> None:
    limit = shared.base.MAILBOX_LIMIT
    with state.bus.subscribe(["room-1"]) as subscription, state.bus.subscribe(["probe"]) as probe:
        for n in range(limit + 10):
            state.bus.publish("room-1", {"n": n})
        # One connection delivers in publish order, so once the probe has its message the flood is in.
        state.bus.publish("probe", {"n": "after the flood"})
        assert probe.get(DEADLINE) == {"n": "after the flood"}
        first = subscription.get(0)
        assert first == {"type": "resync"} and shared.is_resync(first)
        rest = iter(lambda: subscription.get(0), None)
        assert list(rest) == [{"n": n} for n in range(limit + 1, limit + 10)]


def subscribed_connections(server: RedisServer) -> list[dict]:
    return [client for client in server.admin().client_list() if int(client["sub"]) > 0]


def test_bus_holds_thousands_of_subscriptions_on_one_connection(
    state: shared.SharedState, request: pytest.FixtureRequest, prefix: str
) -> None:
    topics = [f"room-{n}" for n in range(500)]
    subscriptions = [state.bus.subscribe([topic]) for topic in topics for _ in range(4)]
    for topic in topics:
        state.bus.publish(topic, {"topic": topic})
    for subscription in subscriptions:
        assert subscription.get(DEADLINE) == {"topic": subscription.topics[0]}
    if state.backend == "redis":
        server = request.getfixturevalue("redis_server")
        admin = server.admin()
        channels = [f"{prefix}:bus:{topic}" for topic in topics[:3]]
        assert admin.pubsub_numsub(*channels) == [(channel.encode(), 1) for channel in channels]
        mine = [client for client in admin.client_list() if client["name"] == prefix]
        assert len([client for client in mine if int(client["sub"]) > 0]) == 1
        # Besides it, the pool opens connections only as commands need them: one thread here needs one.
        assert len(mine) == 2, mine
    for subscription in subscriptions:
        subscription.close()
    if state.backend == "redis":
        wait_until(lambda: not admin.pubsub_channels(f"{prefix}:bus:*"), "every channel is unsubscribed")


def test_bus_survives_a_redis_restart(own_redis_server: RedisServer, prefix: str) -> None:
    state = shared.connect(own_redis_server.url, prefix=prefix)
    try:
        before = state.bus.subscribe(["room-1"])
        state.bus.publish("room-1", {"n": 1})
        assert before.get(DEADLINE) == {"n": 1}

        own_redis_server.kill()
        assert state.healthy() is False
        with pytest.raises(shared.Unavailable, match=f"REDIS_URL={own_redis_server.url}"):
            state.bus.publish("room-1", {"n": 2})
        # Subscribing while Redis is away does not fail: it resyncs once Redis is back.
        during = state.bus.subscribe(["room-1"])

        own_redis_server.start()
        assert state.healthy() is True
        for subscription in (before, during):
            assert subscription.get(DEADLINE) == {"type": "resync"}
        state.bus.publish("room-1", {"n": 3})
        for subscription in (before, during):
            assert subscription.get(DEADLINE) == {"n": 3}
        assert len(subscribed_connections(own_redis_server)) == 1
        # Commands reconnect too.
        with state.locks.hold("conversation-1", wait=0, lease=5):
            assert state.limits.hit("conversation", "c1", 1, 60) is None
    finally:
        state.close()


def test_bus_subscribed_before_redis_is_up_resyncs_once_it_is(tmp_path: Path, prefix: str) -> None:
    require_redis_server()
    server = RedisServer(tmp_path)
    state = shared.connect(server.url, prefix=prefix)
    try:
        with state.bus.subscribe(["room-1"]) as subscription:
            server.start()
            assert subscription.get(DEADLINE) == {"type": "resync"}
            state.bus.publish("room-1", {"n": 1})
            assert subscription.get(DEADLINE) == {"n": 1}
    finally:
        state.close()
        server.stop()


def test_bus_starts_its_reader_afresh_in_a_forked_worker(redis_server: RedisServer, prefix: str) -> None:
    state = shared.connect(redis_server.url, prefix=prefix)
    parent_side = state.bus.subscribe(["room-1"])
    ready_read, ready_write = os.pipe()
    result_read, result_write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads; the child only subscribes
        pid = os.fork()
    if pid == 0:
        try:
            with state.bus.subscribe(["room-1"]) as child_side:
                os.write(ready_write, b"ready")
                message = child_side.get(DEADLINE)
            os.write(result_write, json.dumps(message).encode())
        finally:
            os._exit(0)
    try:
        assert os.read(ready_read, 5) == b"ready"
        state.bus.publish("room-1", {"n": 1})
        assert json.loads(os.read(result_read, 1000)) == {"n": 1}
        assert parent_side.get(DEADLINE) == {"n": 1}
    finally:
        os.waitpid(pid, 0)
        for fd in (ready_read, ready_write, result_read, result_write):
            os.close(fd)
        state.close()


GEVENT_WORKER = """
from gevent import monkey
monkey.patch_all()
import json, os, sys, gevent
from chatroom import shared

state = shared.connect(sys.argv[1] or None, prefix=sys.argv[2])
subscriptions = [state.bus.subscribe(["room-1"]) for _ in range(1000)]

def read(subscription):
    return [subscription.get(30)["n"] for _ in range(3)]

readers = [gevent.spawn(read, subscription) for subscription in subscriptions]
served = []

def take_turn(index):
    with state.locks.hold("conversation-1", wait=30, lease=30):
        served.append(index)

with state.locks.hold("conversation-1", wait=0, lease=30):
    turns = []
    for index in range(20):
        turns.append(gevent.spawn(take_turn, index))
        while state.locks.waiting("conversation-1") < index + 1:
            gevent.sleep(0.005)
    os_threads = len(os.listdir("/proc/self/task"))
    for n in range(3):
        state.bus.publish("room-1", {"n": n})
gevent.joinall(readers + turns, timeout=60)
print(json.dumps({
    "read": sorted({tuple(reader.value or ()) for reader in readers}),
    "served": served,
    "os_threads": os_threads,
}))
state.close()
"""


def test_gevent_waiters_cost_no_thread(redis_url: str | None, prefix: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_WORKER, redis_url or "", prefix],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["read"] == [[0, 1, 2]]
    assert result["served"] == list(range(20))
    # 1,000 readers and 20 lock waiters, yet only the main thread and gevent's few helpers.
    assert result["os_threads"] <= 4, result["os_threads"]
