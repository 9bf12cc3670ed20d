"""Only the chatroom is meant to face users: everything else listens on loopback, behind a token."""
from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from handoff.run import ACTION_PORT_OFFSET
from tests.stack import Stack

pytestmark = pytest.mark.stack

LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """Return the local addresses listening on ``port``, read from /proc/net/tcp{,6}."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != LISTEN or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def test_bots_action_servers_and_chatroom_listen_on_loopback_only(stack: Stack):
    ports = []
    for host_id in ("helpdesk", "financial"):
        port = urlsplit(stack.hosts[host_id]).port
        ports += [port, port + ACTION_PORT_OFFSET]
    ports.append(urlsplit(stack.chatroom_url).port)
    for port in ports:
        assert listening_addresses(port) == {"127.0.0.1"}, port


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_rasa_http_api_requires_the_token(stack: Stack, token):
    person = stack.person()
    person.start()
    person.say("hi")
    params = {"token": token} if token else {}
    url = f"{stack.hosts['helpdesk']}/conversations/{person.conversation_id}/tracker"
    response = requests.get(url, params=params, timeout=10)
    assert response.status_code in (401, 403)
    assert "slots" not in response.text


def test_chatroom_never_returns_a_tracker(stack: Stack):
    person = stack.person()
    person.start()
    person.say("I want to open an incident")
    url = f"{person.chatroom_url}/api/messages"
    reply = person.http.post(url, json={"text": "sam@example.com"}, timeout=30)
    assert reply.ok
    for key in ('"slots"', '"events"', '"latest_message"', '"sender_id"', "Traceback"):
        assert key not in reply.text
