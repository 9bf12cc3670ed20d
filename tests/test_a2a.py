"""The A2A client (chatroom/a2a_client.py) against the real concierge agent, and against faulty hosts.

The concierge runs as its own process (``python -m agents.concierge``), twice:
one offering A2A 1.0, one offering only 0.3, so both wire forms are spoken to
a real a2a-sdk server. Faults come from a tiny local HTTP server.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from chatroom.a2a_client import A2AClient, A2AHostError, context_id_for
from handoff.config import REPO_ROOT
from handoff.payload import arrival_message
from tests.stack import free_port

START_TIMEOUT = 60
CARD_PATH = "/.well-known/agent-card.json"
TURN_TIMEOUT = 10


@dataclass
class Agents:
    config_path: Path
    hosts: dict[str, str]
    concierge: str
    legacy: str


def write_config(path: Path) -> dict[str, str]:
    """Write a handoff config with two bots that need not run and two concierges; return the urls."""
    urls = {host_id: f"http://127.0.0.1:{free_port()}" for host_id in ("helpdesk", "financial")}
    urls["concierge"] = f"http://127.0.0.1:{free_port()}"
    urls["legacy"] = f"http://127.0.0.1:{free_port()}"
    hosts = {
        "helpdesk": {"title": "Helpdesk Assistant", "url": urls["helpdesk"]},
        "financial": {"title": "Financial Assistant", "url": urls["financial"]},
        "concierge": {"title": "Concierge", "url": urls["concierge"], "kind": "a2a"},
        "legacy": {"title": "Old Concierge", "url": urls["legacy"], "kind": "a2a"},
    }
    path.write_text(yaml.safe_dump({"handoff_hosts": hosts, "entry": "helpdesk"}, sort_keys=False))
    return urls


@contextmanager
def running_concierge(
    config_path: Path, host_id: str, url: str, log_path: Path, *args: str
) -> Iterator[None]:
    """Run ``python -m agents.concierge`` until the block ends; return once its card answers."""
    env = {**os.environ, "HANDOFF_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agents.concierge", "--host-id", host_id, *args],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_card(url, process, log_path)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_card(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}{CARD_PATH}", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        # Waiting on the process doubles as the pause between tries and notices a crash at once.
        try:
            process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        break
    raise RuntimeError(f"the concierge at {url} did not start; log:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agents]:
    root = tmp_path_factory.mktemp("a2a")
    config_path = root / "handoff_config.yml"
    urls = write_config(config_path)
    with running_concierge(config_path, "concierge", urls["concierge"], root / "concierge.log"):
        with running_concierge(
            config_path, "legacy", urls["legacy"], root / "legacy.log", "--protocol", "0.3"
        ):
            yield Agents(config_path, urls, urls["concierge"], urls["legacy"])


@pytest.fixture
def client() -> A2AClient:
    return A2AClient()


def texts(reply) -> list[str]:
    return [message["text"] for message in reply.messages]


# The real concierge

def test_turns_of_a_conversation_share_one_context_and_the_agent_remembers_across_them(agents, client):
    first = client.send(agents.concierge, "conv-memory", "Remember my desk is 4.12", timeout=TURN_TIMEOUT)
    second = client.send(agents.concierge, "conv-memory", "What did I tell you?", timeout=TURN_TIMEOUT)

    assert texts(first) == ["Noted: my desk is 4.12."]
    assert texts(second) == ["You told me: my desk is 4.12."]
    expected = context_id_for(agents.concierge, "conv-memory")
    assert (first.context_id, second.context_id) == (expected, expected)


def test_another_conversation_is_another_context_with_nothing_remembered(agents, client):
    client.send(agents.concierge, "conv-one", "Remember the code is 7", timeout=TURN_TIMEOUT)

    reply = client.send(agents.concierge, "conv-two", "What did I tell you?", timeout=TURN_TIMEOUT)

    assert texts(reply) == ["You haven't asked me to remember anything yet."]
    assert context_id_for(agents.concierge, "conv-one") != context_id_for(agents.concierge, "conv-two")


def test_arrival_greets_with_the_title_of_the_host_left(agents, client):
    arrival = arrival_message(agents.hosts["helpdesk"])

    reply = client.send(agents.concierge, "conv-arrival", arrival, timeout=TURN_TIMEOUT)

    assert texts(reply)[0] == "Hello, this is the Concierge. You came from Helpdesk Assistant."
    assert reply.handoff is None


def test_arrival_passes_the_envelope_as_a_data_part(agents, client):
    envelope = {
        "reason": "named_target", "summary": "was reporting a broken printer", "slots": {"priority": "high"},
        "from_host": agents.hosts["helpdesk"], "conversation_id": "conv-envelope", "language": "en",
    }

    reply = client.send(
        agents.concierge, "conv-envelope", arrival_message(agents.hosts["helpdesk"]),
        timeout=TURN_TIMEOUT, envelope=envelope,
    )

    assert "I can see what you were doing there: was reporting a broken printer" in texts(reply)


def test_a_second_arrival_is_welcomed_back(agents, client):
    arrival = arrival_message(agents.hosts["financial"])
    client.send(agents.concierge, "conv-return", arrival, timeout=TURN_TIMEOUT)

    reply = client.send(agents.concierge, "conv-return", arrival, timeout=TURN_TIMEOUT)

    assert texts(reply)[0] == "Welcome back to the Concierge. You came from Financial Assistant."


def test_a_money_question_comes_back_as_a_handoff_request_to_the_configured_host(agents, client):
    reply = client.send(agents.concierge, "conv-money", "I lost my bank card", timeout=TURN_TIMEOUT)

    assert texts(reply) == ["Money questions are for the Financial Assistant. Taking you there now."]
    assert reply.handoff == {
        "handoff_host": agents.hosts["financial"],
        "title": "Financial Assistant",
        "handoff_to": "financial",
        "reason": "out_of_domain",
        "summary": "Asked the concierge: I lost my bank card",
    }
    assert reply.rest_messages()[-1] == {"custom": reply.handoff}


def test_go_back_hands_the_person_back_to_the_host_they_came_from(agents, client):
    arrival = arrival_message(agents.hosts["helpdesk"])
    client.send(agents.concierge, "conv-back", arrival, timeout=TURN_TIMEOUT)

    reply = client.send(agents.concierge, "conv-back", "Please go back", timeout=TURN_TIMEOUT)

    assert reply.handoff == {
        "handoff_host": agents.hosts["helpdesk"],
        "title": "Helpdesk Assistant",
        "handoff_to": "helpdesk",
        "reason": "named_target",
    }


def test_a_completed_task_renders_its_artifact(agents, client):
    reply = client.send(agents.concierge, "conv-printer", "Where is the printer?", timeout=TURN_TIMEOUT)

    assert texts(reply) == ["Printers are on every floor, beside the lifts."]
    assert reply.task_id is None


def test_a_task_waiting_for_input_is_continued_by_the_next_turn(agents, client):
    question = client.send(agents.concierge, "conv-where", "Where is it?", timeout=TURN_TIMEOUT)
    answer = client.send(agents.concierge, "conv-where", "the parking", timeout=TURN_TIMEOUT)

    assert texts(question) == [
        "I can tell you where to find: printer, parking, lost property, meeting rooms, kitchen. "
        "Which one would you like?"
    ]
    assert uuid.UUID(question.task_id).version == 4  # the task the agent waits on
    assert texts(answer) == ["Visitor parking is behind the building; the entrance is on Mill Lane."]
    assert answer.task_id is None


def test_an_arrival_never_continues_an_open_task(agents, client):
    client.send(agents.concierge, "conv-open", "Where is it?", timeout=TURN_TIMEOUT)

    reply = client.send(
        agents.concierge, "conv-open", arrival_message(agents.hosts["helpdesk"]), timeout=TURN_TIMEOUT
    )

    assert texts(reply)[0] == "Hello, this is the Concierge. You came from Helpdesk Assistant."


def test_an_agent_offering_protocol_0_3_is_spoken_to_in_0_3(agents, client):
    first = client.send(agents.legacy, "conv-legacy", "Remember the blue door", timeout=TURN_TIMEOUT)
    second = client.send(agents.legacy, "conv-legacy", "my card was declined", timeout=TURN_TIMEOUT)

    assert client.endpoint(agents.legacy, time.monotonic() + TURN_TIMEOUT).protocol == "0.3"
    assert texts(first) == ["Noted: the blue door."]
    assert second.handoff["handoff_host"] == agents.hosts["financial"]
    assert second.context_id == context_id_for(agents.legacy, "conv-legacy")


# Faulty hosts

@dataclass
class FaultyAgent:
    """A local HTTP server whose first path segment picks how it misbehaves; other names echo."""

    target: str  # where redirects point: a real agent, so following one would succeed
    requests: list[dict] = field(default_factory=list)
    cards_served: dict[str, int] = field(default_factory=dict)  # by the agent's url path
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    def url(self, mode: str, name: str = "agent") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{mode}/{name}"

    def card(self, mode: str, base: str) -> dict:
        binding = "GRPC" if mode == "grpc-only" else "JSONRPC"
        # The card names another origin on purpose: the client must keep to the configured one.
        interface = {"url": f"http://agent.invalid:1{base}/rpc", "protocolBinding": binding}
        return {
            "name": mode, "description": "faulty", "version": "1",
            "supportedInterfaces": [{**interface, "protocolVersion": "1.0"}],
            "capabilities": {}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "skills": [],
        }

    def answer(self, mode: str, call: dict) -> tuple[int, dict[str, str], bytes]:
        if mode == "slow":
            self.release.wait(60)
        if mode == "redirect":
            return 307, {"Location": self.target}, b""
        if mode == "server-error":
            return 500, {}, b""
        if mode == "not-json":
            return 200, {}, b"<html>busy</html>"
        if mode == "jsonrpc-error":
            body = {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32603, "message": "agent crashed"}}
        elif mode == "silent":
            body = {"jsonrpc": "2.0", "id": call["id"], "result": {"message": {
                "messageId": "m", "role": "ROLE_AGENT", "parts": []}}}
        else:
            body = {"jsonrpc": "2.0", "id": call["id"], "result": {"message": {
                "messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "echo"}]}}}
        return 200, {}, json.dumps(body).encode()

    def start(self) -> FaultyAgent:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                mode = self.path.strip("/").split("/")[0]
                if mode == "redirect-card":
                    self.reply(307, {"Location": f"{agent.target}{CARD_PATH}"}, b"")
                elif self.path.endswith(CARD_PATH):
                    base = self.path[: -len(CARD_PATH)]
                    agent.cards_served[base] = agent.cards_served.get(base, 0) + 1
                    self.reply(200, {}, json.dumps(agent.card(mode, base)).encode())
                else:
                    self.reply(404, {}, b"")

            def do_POST(self) -> None:  # noqa: N802
                mode = self.path.strip("/").split("/")[0]
                call = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                agent.requests.append({"path": self.path, "headers": dict(self.headers), "call": call})
                self.reply(*agent.answer(mode, call))

            def reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in {**headers, "Content-Length": str(len(body))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first, as it should when a host is slow

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def faulty(agents) -> Iterator[FaultyAgent]:
    agent = FaultyAgent(target=agents.concierge).start()
    yield agent
    agent.stop()


def test_the_wire_form_of_a_turn_and_an_arrival(faulty, client):
    url = faulty.url("echo")
    client.send(url, "conv-wire", "hello", timeout=TURN_TIMEOUT)
    client.send(url, "conv-wire", arrival_message("http://127.0.0.1:5005"), timeout=TURN_TIMEOUT,
                envelope={"reason": "asked_for_human"})

    turn, arrival = faulty.requests[-2:]
    context_id = context_id_for(url, "conv-wire")
    assert turn["path"] == "/echo/agent/rpc"  # the card's path, on the configured origin
    assert turn["headers"]["A2A-Version"] == "1.0"
    assert turn["call"]["method"] == "SendMessage"
    message = turn["call"]["params"]["message"]
    assert (message["role"], message["contextId"], message["parts"]) == (
        "ROLE_USER", context_id, [{"text": "hello"}]
    )
    arrived = arrival["call"]["params"]["message"]
    assert arrived["parts"] == [
        {"text": '/handoff{"from_host":"http://127.0.0.1:5005"}'}, {"data": {"reason": "asked_for_human"}}
    ]
    assert arrived["contextId"] == context_id
    assert arrived["messageId"] != message["messageId"]


@pytest.mark.parametrize(
    ("mode", "timeout", "error"),
    [
        ("jsonrpc-error", TURN_TIMEOUT, "JSON-RPC error -32603: agent crashed"),
        ("redirect", TURN_TIMEOUT, "answered HTTP 307, a redirect, which is never followed"),
        ("redirect-card", TURN_TIMEOUT, "answered HTTP 307, a redirect, which is never followed"),
        ("slow", 0.5, "no answer within 0.5 s"),
        ("server-error", TURN_TIMEOUT, "answered HTTP 500"),
        ("not-json", TURN_TIMEOUT, "answer is not JSON"),
        ("silent", TURN_TIMEOUT, "the agent answered a message with nothing to show"),
        ("grpc-only", TURN_TIMEOUT, "the agent card offers no JSON-RPC interface (offers: GRPC)"),
    ],
)
def test_a_faulty_agent_raises_the_clients_error(faulty, client, mode, timeout, error):
    with pytest.raises(A2AHostError) as raised:
        client.send(faulty.url(mode), f"conv-{mode}", "hello", timeout=timeout)

    assert error in str(raised.value)


def test_an_agent_that_is_down_raises_the_clients_error(client):
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(A2AHostError) as raised:
        client.send(url, "conv-down", "hello", timeout=TURN_TIMEOUT)

    assert str(raised.value) == f"{url}{CARD_PATH}: connection refused (is the agent running?)"


def test_the_card_is_read_once_while_turns_succeed(faulty, client):
    for _ in range(3):
        client.send(faulty.url("echo", "cached"), "conv-cached", "hello", timeout=TURN_TIMEOUT)

    assert faulty.cards_served["/echo/cached"] == 1


def test_the_card_is_read_again_after_a_failed_turn(faulty, client):
    for _ in range(2):
        with pytest.raises(A2AHostError):
            client.send(faulty.url("server-error", "reread"), "conv-reread", "hello", timeout=TURN_TIMEOUT)

    assert faulty.cards_served["/server-error/reread"] == 2
