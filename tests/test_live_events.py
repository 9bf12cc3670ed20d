"""Live events from the running chatroom: each once, in order, resumable; open streams hold no thread."""
from __future__ import annotations

import resource
import socket
from collections.abc import Iterator

import pytest
import requests

from tests.fakehost import FakeHost
from tests.processes import Chatroom, running_chatroom
from tests.sse import open_stream

STREAMS_PER_CONVERSATION = 4
OPEN_STREAMS = 200


@pytest.fixture(scope="module")
def scripted() -> Iterator[FakeHost]:
    host = FakeHost("Scripted").start()
    yield host
    host.stop()


@pytest.fixture(scope="module")
def chatroom(scripted, tmp_path_factory) -> Iterator[Chatroom]:
    # Room for a few hundred open streams in this test process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    config = {"handoff_hosts": {"scripted": {"title": "Scripted", "url": scripted.url}}}
    env = {"CHATROOM_STREAM_HEARTBEAT": "1", "CHATROOM_RATE_PER_CONVERSATION": "0"}
    with running_chatroom(config, tmp_path_factory.mktemp("live"), env) as running:
        yield running
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Visitor:
    """Someone with a conversation of their own (its cookie) in the running chatroom."""

    def __init__(self, chatroom: Chatroom) -> None:
        self.url = chatroom.url
        self.http = requests.Session()
        assert self.http.post(f"{self.url}/api/conversation", json={}, timeout=10).status_code == 200

    def say(self, text: str) -> list[str]:
        response = self.http.post(f"{self.url}/api/messages", json={"text": text}, timeout=30)
        assert response.status_code == 200, response.text
        return [message["text"] for message in response.json()["messages"]]

    def stream(self, last_event_id: int | None = None):
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        return open_stream(self.http, f"{self.url}/api/events?after=0", headers=headers)


def test_every_stream_of_a_conversation_gets_each_event_once_and_in_order(chatroom):
    visitor = Visitor(chatroom)
    streams = [visitor.stream() for _ in range(STREAMS_PER_CONVERSATION)]
    sent = [f"number {index}" for index in range(10)]
    for text in sent:
        visitor.say(text)
    expected = [text for text in sent for text in (text, f"Scripted heard: {text}")]
    for stream in streams:
        seen = stream.messages_until(lambda message: message["text"] == "Scripted heard: number 9")
        assert [message["text"] for message in seen] == expected
        ids = [message["event_id"] for message in seen]
        assert ids == sorted(set(ids)), "each id once, in increasing order"
        stream.close()


def test_a_stream_resumed_with_last_event_id_sends_what_was_missed_and_nothing_twice(chatroom):
    visitor = Visitor(chatroom)
    first = visitor.stream()
    visitor.say("before the drop")
    seen = first.messages_until(lambda message: message["text"] == "Scripted heard: before the drop")
    first.close()
    last_id = seen[-1]["event_id"]
    # While no stream is open the conversation goes on.
    visitor.say("during the drop")
    resumed = visitor.stream(last_event_id=last_id)
    visitor.say("after the drop")
    more = resumed.messages_until(lambda message: message["text"] == "Scripted heard: after the drop")
    resumed.close()
    assert [message["text"] for message in more] == [
        "during the drop", "Scripted heard: during the drop",
        "after the drop", "Scripted heard: after the drop",
    ]
    assert all(message["event_id"] > last_id for message in more)


def test_two_hundred_open_streams_on_one_worker_do_not_keep_a_turn_from_completing(chatroom):
    streams = [Visitor(chatroom).stream() for _ in range(OPEN_STREAMS)]
    for stream in streams:
        assert stream.next("state").data["host"]["id"] == "scripted"
    assert Visitor(chatroom).say("still there?") == ["still there?", "Scripted heard: still there?"]
    assert requests.get(f"{chatroom.url}/healthz", timeout=10).json() == {"status": "ok"}
    for stream in streams:
        stream.close()


def test_a_twenty_megabyte_body_is_refused_with_413_before_it_is_read(chatroom):
    host, port = chatroom.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /api/messages HTTP/1.1\r\nHost: chatroom\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20000000\r\n\r\n" + b"x" * 1024
        )
        # Only the first kilobyte was sent: an answer now means the rest was never waited for.
        answer = connection.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")
