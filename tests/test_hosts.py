"""The chatroom's adapter for Rasa hosts against real HTTP servers on the loopback.

``RasaHost`` posts a turn over a urllib3 pool (chatroom/web.py); these check
what it makes of each answer, and that a replica refusing the connection
passes the turn to the next one while any other failure does not.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from chatroom.hosts import HostUnavailable, RasaHost
from handoff.config import REPLICA_PORT_STEP, Host
from tests.fakehost import FAIL, SILENT, SLEEP, FakeHost
from tests.stack import free_port


def pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False)


def rasa_host(url: str, replicas: int = 1) -> RasaHost:
    return RasaHost(Host(id="beta", title="Beta Bot", url=url, replicas=replicas), pool())


@pytest.fixture
def fake():
    host = FakeHost("Beta Bot").start()
    yield host
    host.stop()


class Raw:
    """A server answering every POST with 200 and the given body, whatever was asked.

    With no body it reads each request and hangs up without a word, as a
    replica killed in the middle of a turn does.
    """

    def __init__(self, body: bytes | None, port: int = 0) -> None:
        self.received = 0

        raw = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                raw.received += 1
                if body is None:
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_turn_carries_the_sender_text_and_metadata_and_returns_the_replies(fake):
    host = rasa_host(fake.url)
    replies = host.send("c1", "hello there", timeout=5, metadata={"handoff": {"request": "a loan"}})
    assert replies == [{"recipient_id": "c1", "text": "Beta Bot heard: hello there"}]
    assert fake.received == [("c1", "hello there")]
    assert fake.metadata == [{"handoff": {"request": "a loan"}}]


def test_a_turn_without_metadata_sends_none(fake):
    rasa_host(fake.url).send("c1", "hi", timeout=5)
    assert fake.metadata == [None]


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"<html>oops</html>", "reply is not JSON"),
        (b'{"text": "hi"}', "reply is not a list of messages"),
        (b'["hi"]', "reply is not a list of messages"),
        (b"[]", "empty reply"),
    ],
)
def test_an_unusable_answer_makes_the_host_unavailable_and_says_why(body, reason):
    server = Raw(body)
    try:
        with pytest.raises(HostUnavailable) as raised:
            rasa_host(server.url).send("c1", "hi", timeout=5)
    finally:
        server.stop()
    assert str(raised.value) == f"beta at {server.url}/webhooks/rest/webhook: {reason}"


@pytest.mark.parametrize("message, reason", [(f"{FAIL}500", "HTTP 500"), (SILENT, "empty reply")])
def test_a_failing_host_is_unavailable(fake, message, reason):
    with pytest.raises(HostUnavailable) as raised:
        rasa_host(fake.url).send("c1", message, timeout=5)
    assert str(raised.value).endswith(reason)


def test_a_host_slower_than_the_budget_is_unavailable_after_one_try(fake):
    with pytest.raises(HostUnavailable) as raised:
        rasa_host(fake.url).send("c1", f"{SLEEP}2", timeout=0.3)
    assert "ReadTimeoutError" in str(raised.value)
    assert fake.messages_from("c1") == [f"{SLEEP}2"], "a timed-out turn is not sent again"


def test_a_host_that_is_down_is_unavailable():
    with pytest.raises(HostUnavailable) as raised:
        rasa_host(f"http://127.0.0.1:{free_port()}").send("c1", "hi", timeout=5)
    assert str(raised.value) == "beta: no replica answered"


def test_a_replica_refusing_the_connection_passes_the_turn_to_the_next():
    # Replica 0 is down; replica 1 (REPLICA_PORT_STEP above it) answers. Turns take
    # the replicas in turn, so of two turns one starts at each: both are answered.
    down = free_port(also_free_at=REPLICA_PORT_STEP)
    live = FakeHost("Beta Bot").start(port=down + REPLICA_PORT_STEP)
    try:
        host = rasa_host(f"http://127.0.0.1:{down}", replicas=2)
        answers = [host.send("c1", text, timeout=5) for text in ("one", "two")]
    finally:
        live.stop()
    assert [reply[0]["text"] for reply in answers] == ["Beta Bot heard: one", "Beta Bot heard: two"]
    assert live.messages_from("c1") == ["one", "two"]


def test_a_replica_hanging_up_mid_turn_makes_the_host_unavailable_without_trying_the_next():
    # It read the message, so it may have handled it: sent to the next replica as
    # well, the bot would hear it twice. The person is told and sends it again.
    port = free_port(also_free_at=REPLICA_PORT_STEP)
    first, second = Raw(None, port), Raw(None, port + REPLICA_PORT_STEP)
    try:
        host = rasa_host(first.url, replicas=2)
        # Turns take the replicas in turn: one of two starts at each.
        for text in ("one", "two"):
            with pytest.raises(HostUnavailable) as raised:
                host.send("c1", text, timeout=5)
            assert "ProtocolError" in str(raised.value)
    finally:
        first.stop()
        second.stop()
    assert (first.received, second.received) == (1, 1)


def test_a_reply_is_read_as_utf8_json():
    # Raw UTF-8 bytes, not \u escapes (which FakeHost's json.dumps would send).
    server = Raw('[{"recipient_id": "c1", "text": "café ☕"}]'.encode())
    try:
        replies = rasa_host(server.url).send("c1", "hi", timeout=5)
    finally:
        server.stop()
    assert replies == [{"recipient_id": "c1", "text": "café ☕"}]
