"""What the running chatroom refuses: redirects from hosts, forged client addresses.

Apart from the checks of one setting's values, every test here talks HTTP to
``python -m chatroom`` (gunicorn, gevent workers) started as a subprocess, with
scripted hosts behind it. One chatroom serves most tests; it trusts one proxy
hop, so each test names a client address of its own in X-Forwarded-For and
starts with fresh per-client limits.
"""
from __future__ import annotations

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

from chatroom import routing, settings
from handoff.config import REPO_ROOT
from tests.fakehost import HAND_TO_ID, FakeHost
from tests.stack import free_port
from tests.test_desk import stop, wait_for

OPERATORS = "alice:secret,bob:pw,carol:pw3,dave:pw4"
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
    conversation = client(room, https=True).post(f"{room.url}/api/conversation", json={}, timeout=30)

    assert "Secure" in set_cookies(conversation)["chatroom"].split("; ")
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


def test_cookie_secure_true_marks_cookies_secure_even_over_plain_http(alpha, tmp_path):
    with running_chatroom(tmp_path, one_host(alpha), {"CHATROOM_COOKIE_SECURE": "true"}) as chatroom:
        conversation = requests.post(f"{chatroom.url}/api/conversation", json={}, timeout=30)

    assert "Secure" in set_cookies(conversation)["chatroom"].split("; ")
