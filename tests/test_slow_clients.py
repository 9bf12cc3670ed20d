"""Slow and idle clients of the running chatroom are cut off (CHATROOM_CLIENT_TIMEOUT, here 1 s).

The tests wait for the close, not for a time: a server that never closes fails them.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.fakehost import FakeHost
from tests.processes import Chatroom, running_chatroom

# Long enough for the server to have cut a client off many times over; the test waits on the close.
CLOSE_WAIT = 20.0


@pytest.fixture(scope="module")
def chatroom(tmp_path_factory) -> Iterator[Chatroom]:
    host = FakeHost("Scripted").start()
    config = {"handoff_hosts": {"scripted": {"title": "Scripted", "url": host.url}}}
    env = {"CHATROOM_CLIENT_TIMEOUT": "1"}
    with running_chatroom(config, tmp_path_factory.mktemp("slow"), env) as running:
        yield running
    host.stop()


def connect(chatroom: Chatroom) -> socket.socket:
    parts = urlsplit(chatroom.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=CLOSE_WAIT)


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes the connection; False if it is still open after CLOSE_WAIT."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_a_client_that_never_finishes_its_headers_is_cut_off_and_others_are_served(chatroom):
    sock = connect(chatroom)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: chatroom\r\nX-Slow: ")
    # Meanwhile everyone else is served.
    assert requests.get(f"{chatroom.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert closed_by_server(sock)
    sock.close()


def read_response(sock: socket.socket) -> bytes:
    """Read one HTTP response with a Content-Length, leaving the connection open."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, answer
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_idle_keep_alive_connection_is_closed_by_the_server(chatroom):
    sock = connect(chatroom)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: chatroom\r\n\r\n")
    answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"connection: close" not in answer.lower()  # kept alive, then closed for idling
    assert closed_by_server(sock)
    sock.close()
