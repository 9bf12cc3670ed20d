"""What the running chatroom refuses: redirects from hosts, forged client addresses, login floods,
stale operator logins and floods of the person's API.

Apart from the checks of one setting's values, every test here talks HTTP to
``python -m chatroom`` (gunicorn, gevent workers) started as a subprocess, with
scripted hosts behind it. One chatroom serves most tests; it trusts one proxy
hop, so each test names a client address of its own in X-Forwarded-For and
starts with fresh per-client limits.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from chatroom import create_app, routing, settings
from handoff.config import REPO_ROOT
from tests.fakehost import HAND_TO_ID, FakeHost
from tests.sse import open_stream
from tests.stack import free_port
from tests.test_desk import stop, wait_for

OPERATORS = "alice:secret,bob:pw,carol:pw3,dave:pw4"
# The operator's login cookie, apart from the person's ("chatroom").
LOGIN_COOKIE = "chatroom_operator"
MiB = 1024 * 1024


@dataclass
class Chatroom:
    """A running ``python -m chatroom`` and where it keeps its state and log."""

    url: str
    state_dir: Path
    log_path: Path
    process: subprocess.Popen

    def database(self) -> sqlite3.Connection:
        return sqlite3.connect(self.state_dir / "chatroom.sqlite", timeout=10, isolation_level=None)

    def count(self, table: str) -> int:
        with self.database() as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def log(self) -> str:
        return self.log_path.read_text()

    def worker_peak_memory(self) -> int:
        """Return the peak resident memory (bytes) of the chatroom's one gunicorn worker."""
        (worker,) = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        status = Path(f"/proc/{worker}/status").read_text()
        (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(line.split()[1]) * 1024


@contextmanager
def running_chatroom(root: Path, config: dict, env: dict[str, str]) -> Iterator[Chatroom]:
    """Run ``python -m chatroom`` on a free port with this config and environment; stop it on exit."""
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "handoff_config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port, state_dir, log_path = free_port(), root / "state", root / "chatroom.log"
    settings = {
        "HANDOFF_CONFIG": str(config_path), "HANDOFF_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1",
        "CHATROOM_DESK_OPERATORS": OPERATORS, **env,
    }
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatroom", "--port", str(port)], cwd=REPO_ROOT,
            env={**os.environ, **settings}, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/healthz", process, "the chatroom")
            yield Chatroom(f"http://127.0.0.1:{port}", state_dir, log_path, process)
        finally:
            stop(process)


def one_host(host: FakeHost) -> dict:
    return {"handoff_hosts": {"alpha": {"title": host.title, "url": host.url}}}


@pytest.fixture(scope="module")
def alpha() -> Iterator[FakeHost]:
    host = FakeHost("Alpha Bot").start()
    yield host
    host.stop()


# 12. A host that answers with a redirect is unavailable; the redirect is never followed.

class Answering:
    """An HTTP server that records every request (method, path) and answers each with ``answer(path)``."""

    def __init__(self, answer) -> None:
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def respond(self) -> None:
                server.requests.append((self.command, self.path))
                status, headers, body = answer(self.path)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = respond  # noqa: N815 (http.server's naming)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def redirector(target: str) -> Answering:
    """Answer every request with 307 to the same path at ``target``."""
    return Answering(lambda path: (307, {"Location": f"{target}{path}"}, b""))


def recorder() -> Answering:
    """Answer every request with 200 and an empty JSON list (what a redirect would reach)."""
    return Answering(lambda path: (200, {"Content-Type": "application/json"}, b"[]"))


@pytest.fixture
def redirecting_hosts():
    """Hosts that redirect: a bot to another bot's webhook, a desk to a server that records what came."""
    target, recorded = FakeHost("Target Bot").start(), recorder()
    to_target, to_recorder = redirector(target.url), redirector(recorded.url)
    config = {
        "handoff_hosts": {
            "target": {"title": "Target Bot", "url": target.url},
            "bounce": {"title": "Bounce Bot", "url": to_target.url},
            "desk": {"title": "Moved Desk", "url": to_recorder.url, "kind": "parlant"},
        },
        "entry": "target",
    }
    yield config, target, recorded
    for server in (target, recorded, to_target, to_recorder):
        server.stop()


@pytest.mark.parametrize("destination, title", [("bounce", "Bounce Bot"), ("desk", "Moved Desk")])
def test_a_host_answering_with_a_redirect_is_unavailable_and_the_redirect_is_not_followed(
    redirecting_hosts, tmp_path, destination, title
):
    config, target, recorded = redirecting_hosts
    with running_chatroom(tmp_path, config, {}) as chatroom:
        person = requests.Session()
        person.post(f"{chatroom.url}/api/conversation", json={}, timeout=30)
        state = person.post(f"{chatroom.url}/api/messages", json={"text": f"{HAND_TO_ID}{destination}"},
                            timeout=30).json()
        log = chatroom.log()

    assert state["host"]["id"] == "target"
    told = routing.TARGET_UNAVAILABLE.format(title=title, current="Target Bot")
    assert [m["text"] for m in state["messages"] if m["role"] == "notice"] == [told]
    assert [text for _, text in target.received] == [f"{HAND_TO_ID}{destination}"], "no arrival came round"
    assert recorded.requests == []
    assert "answered HTTP 307, a redirect, which is never followed" in log


# Limits small enough to reach in a test; the rest stay at their defaults.
ROOM_SETTINGS = {
    "CHATROOM_TRUSTED_PROXIES": "1",
    "CHATROOM_RATE_PER_CLIENT": "4",
    "CHATROOM_RATE_PER_CONVERSATION": "6",
    "CHATROOM_READS_PER_CONVERSATION": "3",
    "CHATROOM_LOGIN_PER_CLIENT": "8",
    "CHATROOM_STREAM_HEARTBEAT": "1",
}


@pytest.fixture(scope="module")
def room(alpha: FakeHost, tmp_path_factory) -> Iterator[Chatroom]:
    with running_chatroom(tmp_path_factory.mktemp("room"), one_host(alpha), ROOM_SETTINGS) as chatroom:
        yield chatroom


_addresses = itertools.count(1)


def client(room: Chatroom, *, https: bool = False) -> requests.Session:
    """Return an HTTP client that the trusted proxy names by an address of its own."""
    session = requests.Session()
    number = next(_addresses)
    session.headers["X-Forwarded-For"] = f"198.51.{number // 250}.{number % 250 + 1}"
    if https:
        session.headers["X-Forwarded-Proto"] = "https"
    return session


def set_cookies(response: requests.Response) -> dict[str, str]:
    """Return each Set-Cookie header of a response by cookie name, as sent."""
    return {header.split("=", 1)[0]: header for header in response.raw.headers.getlist("Set-Cookie")}


# 3. Forwarded headers count only from TRUSTED_PROXIES; cookies are Secure over https.

@pytest.mark.parametrize(("raw", "value"), [
    ("auto", "auto"), ("AUTO", "auto"), ("true", True), ("off", False),
])
def test_cookie_secure_is_auto_or_yes_or_no(raw, value):
    assert settings.load({"CHATROOM_COOKIE_SECURE": raw})["COOKIE_SECURE"] == value


def test_cookie_secure_refuses_anything_else_by_name():
    with pytest.raises(settings.SettingError, match="CHATROOM_COOKIE_SECURE='sometimes' is not auto, true"):
        settings.load({"CHATROOM_COOKIE_SECURE": "sometimes"})


def test_cookies_are_secure_when_the_trusted_proxy_says_https(room):
    person, operator = client(room, https=True), client(room, https=True)

    conversation = person.post(f"{room.url}/api/conversation", json={}, timeout=30)
    login = log_in(room, operator, "alice", "secret")

    assert "Secure" in set_cookies(conversation)["chatroom"].split("; ")
    assert "Secure" in set_cookies(login)[LOGIN_COOKIE].split("; ")
    plain = client(room).post(f"{room.url}/api/conversation", json={}, timeout=30)
    assert "Secure" not in set_cookies(plain)["chatroom"].split("; ")


def test_a_trusted_proxy_gives_each_client_address_its_own_limit(room, alpha):
    first, second = client(room), client(room)
    for person in (first, second):
        assert person.post(f"{room.url}/api/conversation", json={}, timeout=30).status_code == 200

    sent = [first.post(f"{room.url}/api/messages", json={"text": f"hi {n}"}, timeout=30) for n in range(5)]
    other = second.post(f"{room.url}/api/messages", json={"text": "me too"}, timeout=30)

    assert [answer.status_code for answer in sent] == [200] * 4 + [429]
    assert int(sent[-1].headers["Retry-After"]) >= 1
    assert other.status_code == 200
    assert [text for _, text in alpha.received].count("hi 4") == 0


def test_without_trusted_proxies_forwarded_headers_buy_nothing(alpha, tmp_path):
    with running_chatroom(tmp_path, one_host(alpha), {"CHATROOM_RATE_PER_CLIENT": "2"}) as chatroom:
        def person(address: str) -> tuple[requests.Session, requests.Response]:
            session = requests.Session()
            session.headers.update({"X-Forwarded-For": address, "X-Forwarded-Proto": "https"})
            return session, session.post(f"{chatroom.url}/api/conversation", json={}, timeout=30)

        (first, started), (second, _) = person("203.0.113.1"), person("203.0.113.2")
        sent = [
            first.post(f"{chatroom.url}/api/messages", json={"text": "hi"}, timeout=30),
            first.post(f"{chatroom.url}/api/messages", json={"text": "hi again"}, timeout=30),
            second.post(f"{chatroom.url}/api/messages", json={"text": "a fresh limit?"}, timeout=30),
        ]

    assert [answer.status_code for answer in sent] == [200, 200, 429]
    assert "Secure" not in set_cookies(started)["chatroom"].split("; "), "nor does X-Forwarded-Proto"


def test_cookie_secure_true_marks_both_cookies_secure_even_over_plain_http(alpha, tmp_path):
    with running_chatroom(tmp_path, one_host(alpha), {"CHATROOM_COOKIE_SECURE": "true"}) as chatroom:
        conversation = requests.post(f"{chatroom.url}/api/conversation", json={}, timeout=30)
        login = log_in(chatroom, requests.Session(), "alice", "secret")

    assert "Secure" in set_cookies(conversation)["chatroom"].split("; ")
    assert "Secure" in set_cookies(login)[LOGIN_COOKIE].split("; ")


# 1. Logins are throttled and password checks bounded.

def log_in(room: Chatroom, session: requests.Session, name: str, password: str) -> requests.Response:
    return session.post(
        f"{room.url}/desk/login", data={"name": name, "password": password}, allow_redirects=False, timeout=30
    )


def queue_status(room: Chatroom, token: str) -> int:
    """Return the status of the console's queue for a request carrying only this login cookie."""
    return requests.get(
        f"{room.url}/desk/api/queue", headers={"Cookie": f"{LOGIN_COOKIE}={token}"}, timeout=30
    ).status_code


def test_a_name_with_five_wrong_passwords_is_refused_for_a_while_even_with_the_right_one(room):
    attacker, elsewhere = client(room), client(room)
    statuses = [log_in(room, attacker, "carol", f"guess {n}").status_code for n in range(5)]

    locked = log_in(room, attacker, "carol", "pw3")
    from_elsewhere = log_in(room, elsewhere, "carol", "pw3")

    assert statuses == [401] * 5
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    assert "Too many login attempts" in locked.text
    assert from_elsewhere.status_code == 429
    assert log_in(room, attacker, "bob", "pw").status_code == 302, "other names are not locked"


def test_one_client_address_gets_a_few_attempts_whatever_the_names(room):
    attacker = client(room)
    statuses = [log_in(room, attacker, f"nobody {n}", "guess").status_code for n in range(8)]

    refused = log_in(room, attacker, "alice", "secret")

    assert statuses == [401] * 8
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert log_in(room, client(room), "alice", "secret").status_code == 302


def test_a_successful_login_clears_the_count_of_its_name(room):
    first, second = client(room), client(room)
    assert [log_in(room, first, "dave", "wrong").status_code for _ in range(4)] == [401] * 4
    assert log_in(room, first, "dave", "pw4").status_code == 302

    assert [log_in(room, second, "dave", "wrong").status_code for _ in range(4)] == [401] * 4
    assert log_in(room, second, "dave", "pw4").status_code == 302


def test_sixty_four_logins_at_once_queue_or_get_503_and_memory_stays_bounded(room):
    before = room.worker_peak_memory()
    start = threading.Barrier(64)
    answers: list[requests.Response] = []

    def attempt(number: int) -> None:
        session = client(room)
        start.wait()
        answers.append(log_in(room, session, f"guesser {number}", "guess"))

    threads = [threading.Thread(target=attempt, args=(number,)) for number in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    grown = room.worker_peak_memory() - before

    statuses = sorted(answer.status_code for answer in answers)
    assert len(answers) == 64
    assert set(statuses) == {401, 503}, statuses
    assert all(answer.headers["Retry-After"] == "2" for answer in answers if answer.status_code == 503)
    # LOGIN_CHECKS (2) checks of 32 MiB at a time, never 64: the peak grows by two at most, plus slack.
    assert grown < 3 * 32 * MiB, f"the worker's peak memory grew by {grown / MiB:.0f} MiB"
    assert "password checks already here" in room.log()


def test_an_unknown_name_costs_one_password_check_like_a_wrong_password(tmp_path, monkeypatch, alpha):
    config_path = tmp_path / "handoff_config.yml"
    config_path.write_text(yaml.safe_dump(one_host(alpha)))
    monkeypatch.setenv("HANDOFF_CONFIG", str(config_path))
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "chatroom.sqlite"), "SECRET_KEY": "test",
                      "DESK_OPERATORS": OPERATORS})
    costs = []

    def count(password: bytes, *, salt: bytes, **cost) -> bytes:
        costs.append(cost)
        return b""

    monkeypatch.setattr(hashlib, "scrypt", count)
    for name in ("alice", "mallory"):
        assert app.test_client().post("/desk/login", data={"name": name, "password": "x"}).status_code == 401

    assert len(costs) == 2 and costs[0] == costs[1], "one check each, at the same cost"
    assert (costs[0]["n"], costs[0]["r"]) == (2**15, 8)


# 2. Operator logins live on the server, in a cookie of their own.

def test_an_operator_login_is_a_cookie_of_its_own_under_desk_httponly_and_strict(room):
    response = log_in(room, client(room), "bob", "pw")

    cookies = set_cookies(response)
    assert response.status_code == 302
    assert list(cookies) == [LOGIN_COOKIE], "the person's cookie is not touched"
    attributes = [part.strip() for part in cookies[LOGIN_COOKIE].split(";")]
    assert {"Path=/desk", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} <= set(attributes)
    assert "Secure" not in attributes, "plain http, and no proxy says https"


def test_a_copy_of_the_login_cookie_stops_working_at_logout(room):
    operator = client(room)
    assert log_in(room, operator, "alice", "secret").status_code == 302
    token = operator.cookies[LOGIN_COOKIE]
    assert queue_status(room, token) == 200

    logout = operator.post(f"{room.url}/desk/logout", allow_redirects=False, timeout=30)

    assert logout.status_code == 302
    assert "Max-Age=0" in set_cookies(logout)[LOGIN_COOKIE]
    assert queue_status(room, token) == 401


@pytest.mark.parametrize("lapse", [
    "last_seen_at = last_seen_at - 3600",  # idle past OPERATOR_IDLE_TIMEOUT (1800 s)
    "expires_at = created_at",  # past OPERATOR_SESSION_LIFETIME
])
def test_a_login_idle_too_long_or_past_its_lifetime_ends(room, lapse):
    operator = client(room)
    assert log_in(room, operator, "alice", "secret").status_code == 302
    token = operator.cookies[LOGIN_COOKIE]
    assert queue_status(room, token) == 200
    before = room.count("operator_session")

    with room.database() as db:
        changed = db.execute(f"UPDATE operator_session SET {lapse} WHERE token_hash = ?",
                             (hashlib.sha256(token.encode()).hexdigest(),)).rowcount

    assert changed == 1
    assert queue_status(room, token) == 401
    assert room.count("operator_session") == before - 1


def test_a_login_in_use_outlives_the_idle_timeout(room):
    operator = client(room)
    assert log_in(room, operator, "alice", "secret").status_code == 302
    token = operator.cookies[LOGIN_COOKIE]
    hashed = hashlib.sha256(token.encode()).hexdigest()

    # Two spells of 1000 s each (1800 s is the idle timeout) with a request between them.
    for _ in range(2):
        with room.database() as db:
            db.execute("UPDATE operator_session SET created_at = created_at - 1000, "
                       "last_seen_at = last_seen_at - 1000 WHERE token_hash = ?", (hashed,))
        assert queue_status(room, token) == 200

    with room.database() as db:
        created, seen = db.execute(
            "SELECT created_at, last_seen_at FROM operator_session WHERE token_hash = ?", (hashed,)
        ).fetchone()
    assert seen - created > 1900, "each request moved last_seen_at forward"


def test_an_open_console_stream_ends_without_a_word_more_when_its_login_ends(room):
    operator = client(room)
    assert log_in(room, operator, "bob", "pw").status_code == 302
    stream = open_stream(operator, f"{room.url}/desk/api/events")
    assert stream.next("queue").data["operator"] == "bob"

    assert operator.post(f"{room.url}/desk/logout", allow_redirects=False, timeout=30).status_code == 302

    after_logout = []
    while (event := stream.events.get(timeout=30)) is not None:
        after_logout.append(event)
    assert after_logout == []


def test_a_new_password_ends_that_operators_logins_and_no_one_elses(alpha, tmp_path):
    alice, bob = requests.Session(), requests.Session()
    with running_chatroom(tmp_path, one_host(alpha), {}) as chatroom:
        assert log_in(chatroom, alice, "alice", "secret").status_code == 302
        assert log_in(chatroom, bob, "bob", "pw").status_code == 302

    changed = {"CHATROOM_DESK_OPERATORS": "alice:a-new-one,bob:pw"}
    with running_chatroom(tmp_path, one_host(alpha), changed) as chatroom:
        assert queue_status(chatroom, alice.cookies[LOGIN_COOKIE]) == 401
        assert queue_status(chatroom, bob.cookies[LOGIN_COOKIE]) == 200, "a restart alone ends nothing"
        assert log_in(chatroom, requests.Session(), "alice", "secret").status_code == 401
        assert log_in(chatroom, requests.Session(), "alice", "a-new-one").status_code == 302
        assert "alice's login ended: the operator's password changed" in chatroom.log()


# 6. Every endpoint of the person's API is limited, per client address.

def test_fifty_new_conversations_from_one_address_create_only_ten(room):
    forwarded = {"X-Forwarded-For": client(room).headers["X-Forwarded-For"]}
    before = room.count("conversation")

    answers = [
        requests.post(f"{room.url}/api/conversation", json={}, headers=forwarded, timeout=30)
        for _ in range(50)
    ]

    assert [answer.status_code for answer in answers] == [200] * 10 + [429] * 40
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in answers[10:])
    assert room.count("conversation") == before + 10


def test_page_loads_streams_and_polls_of_one_conversation_are_limited(room):
    person = client(room)
    assert person.post(f"{room.url}/api/conversation", json={}, timeout=30).status_code == 200

    def open_and_close_stream() -> requests.Response:
        with person.get(f"{room.url}/api/events", stream=True, timeout=30) as response:
            if response.status_code != 200:
                response.content  # noqa: B018 - a refusal is short: read it before closing
            return response

    answers = [
        person.post(f"{room.url}/api/conversation", json={}, timeout=30),
        person.get(f"{room.url}/api/updates", timeout=30),
        open_and_close_stream(),
        open_and_close_stream(),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "try again in" in answers[-1].json()["error"]


@pytest.mark.parametrize("path, refused_before", [
    ("/api/desk/leave", 409),  # not at a desk: refused, but it counts
    ("/api/start-over", 200),
    ("/api/messages", 400),  # no text: refused, but it counts
])
def test_leaving_starting_over_and_sending_count_against_the_clients_limit(room, path, refused_before):
    person = client(room)
    assert person.post(f"{room.url}/api/conversation", json={}, timeout=30).status_code == 200

    statuses = [person.post(f"{room.url}{path}", json={}, timeout=30).status_code for _ in range(5)]

    assert statuses == [refused_before] * 4 + [429]


# The person's API refuses what is malformed, foreign or too much before any host hears of it.

def test_oversized_bodies_and_overlong_messages_are_refused_before_any_host_call(room, alpha):
    person = client(room)
    person.post(f"{room.url}/api/conversation", json={}, timeout=30)
    heard = len(alpha.received)

    oversized = person.post(f"{room.url}/api/messages", data="x" * (17 * 1024), timeout=30,
                            headers={"Content-Type": "application/json"})
    overlong = person.post(f"{room.url}/api/messages", json={"text": "x" * 2001}, timeout=30)

    assert (oversized.status_code, overlong.status_code) == (413, 400)
    assert "2001 characters; the limit is 2000" in overlong.json()["error"]
    assert len(alpha.received) == heard


@pytest.mark.parametrize("key", ["conversation_id", "sender"])
def test_a_request_naming_another_conversation_is_refused(room, alpha, key):
    person = client(room)
    person.post(f"{room.url}/api/conversation", json={}, timeout=30)
    heard = len(alpha.received)

    answer = person.post(f"{room.url}/api/messages", json={"text": "hi", key: "someone-else"}, timeout=30)

    assert answer.status_code == 403
    assert len(alpha.received) == heard


def test_one_conversation_sending_too_fast_gets_429_from_any_address(room, alpha):
    person = client(room)
    person.post(f"{room.url}/api/conversation", json={}, timeout=30)

    def send(number: int) -> requests.Response:
        # A fresh address each time, so only the conversation's own limit (6) can answer 429.
        moved = {"X-Forwarded-For": client(room).headers["X-Forwarded-For"]}
        return person.post(f"{room.url}/api/messages", json={"text": f"fast {number}"}, headers=moved,
                           timeout=30)

    answers = [send(number) for number in range(7)]

    assert [answer.status_code for answer in answers] == [200] * 6 + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "fast 6" not in [text for _, text in alpha.received]


def test_another_origin_gets_no_cors_headers(room):
    answer = client(room).post(f"{room.url}/api/conversation", json={}, timeout=30,
                               headers={"Origin": "https://evil.example"})

    assert answer.status_code == 200
    assert [name for name in answer.headers if name.lower().startswith("access-control-")] == []


# 5. Start over, with a bot (the desk's part is in test_start_over.py).

def test_start_over_forgets_the_conversation_and_starts_a_new_one(room, alpha):
    person = client(room)
    person.post(f"{room.url}/api/conversation", json={}, timeout=30)
    person.post(f"{room.url}/api/messages", json={"text": "my secret question"}, timeout=30)
    first = person.cookies["chatroom"]

    fresh = person.post(f"{room.url}/api/start-over", json={}, timeout=30)
    reopened = person.post(f"{room.url}/api/conversation", json={}, timeout=30)

    assert fresh.status_code == 200
    assert fresh.json() == {"host": {"id": "alpha", "title": "Alpha Bot"}, "messages": []}
    assert person.cookies["chatroom"] != first
    assert reopened.json()["messages"] == []
