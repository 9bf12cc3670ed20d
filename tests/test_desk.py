"""The human desk against a real Parlant server (``python -m desk``) and scripted bots: fast, offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from chatroom import create_app, stays, store
from handoff.config import REPO_ROOT
from tests.fakehost import FakeHost
from tests.sse import open_test_stream
from tests.stack import Person, free_port

DESK_TOKEN = "desk-test-token-0123456789"
OPERATORS = "alice:secret,bob:pw with spaces"
ASK_FOR_HUMAN = "hand me to the desk because "
GENERATION_MARKER = "generation-attempted"


class ReasoningHost(FakeHost):
    """A scripted bot that can also hand off to the desk with a reason, as the real bots do."""

    def reply(self, sender: str, message: str):
        if message.startswith(ASK_FOR_HUMAN):
            self.received.append((sender, message))
            reason = message[len(ASK_FOR_HUMAN) :]
            return [
                {"recipient_id": sender, "text": "Let me find you a person."},
                {
                    "recipient_id": sender,
                    "custom": {"handoff_to": "human", "title": "Support team", "reason": reason},
                },
            ]
        return super().reply(sender, message)


@dataclass
class Desk:
    """A running desk process and how to reach it."""

    url: str
    state_dir: Path
    process: subprocess.Popen

    def events(self, session_id: str, min_offset: int = 0) -> list[dict]:
        response = requests.get(
            f"{self.url}/sessions/{session_id}/events",
            params={"min_offset": min_offset, "wait_for_data": 0},
            headers={"Authorization": f"Bearer {DESK_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def session(self, session_id: str) -> dict:
        response = requests.get(
            f"{self.url}/sessions/{session_id}", headers={"Authorization": f"Bearer {DESK_TOKEN}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    @property
    def marker(self) -> Path:
        return self.state_dir / "desk" / "human" / GENERATION_MARKER


def wait_for(url: str, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"{what} did not answer {url} within {timeout:.0f}s")


def env_for(config_path: Path, state_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HANDOFF_CONFIG": str(config_path),
        "HANDOFF_STATE_DIR": str(state_dir),
        "DESK_API_TOKEN": DESK_TOKEN,
        "CHATROOM_DESK_OPERATORS": OPERATORS,
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def running_desk(config_path: Path, state_dir: Path, url: str, log_path: Path) -> Iterator[Desk]:
    """Run ``python -m desk`` for the config's human host; stop it (SIGINT) on exit."""
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "desk", "--host-id", "human"],
            cwd=REPO_ROOT,
            env=env_for(config_path, state_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(f"{url}/healthz", process, "the desk")
            yield Desk(url, state_dir, process)
        finally:
            stop(process)


def stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def bots() -> Iterator[dict[str, FakeHost]]:
    started = {"alpha": ReasoningHost("Alpha Bot").start(), "beta": FakeHost("Beta Bot").start()}
    yield started
    for host in started.values():
        host.stop()


@pytest.fixture(scope="module")
def desk_config(tmp_path_factory, bots) -> Path:
    root = tmp_path_factory.mktemp("desk")
    desk_port = free_port(also_free_at=18)
    config = {
        "handoff_hosts": {
            **{host_id: {"title": host.title, "url": host.url} for host_id, host in bots.items()},
            "human": {"title": "Support team", "url": f"http://localhost:{desk_port}", "kind": "parlant"},
        },
        "entry": "alpha",
    }
    path = root / "handoff_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def desk(desk_config: Path) -> Iterator[Desk]:
    config = yaml.safe_load(desk_config.read_text())
    url = config["handoff_hosts"]["human"]["url"].replace("localhost", "127.0.0.1")
    state_dir = desk_config.parent / "state"
    with running_desk(desk_config, state_dir, url, desk_config.parent / "desk.log") as running:
        yield running


@pytest.fixture
def app(desk: Desk, desk_config: Path, tmp_path, monkeypatch):
    monkeypatch.setenv("HANDOFF_CONFIG", str(desk_config))
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(tmp_path / "chatroom.sqlite"),
            "SECRET_KEY": "test",
            "DESK_API_TOKEN": DESK_TOKEN,
            "DESK_OPERATORS": OPERATORS,
            "DESK_WAIT": 2,
            "STREAM_HEARTBEAT": 1,
            "RATE_PER_CLIENT": 0,
        }
    )
    yield app
    app.extensions["stay_readers"].stop()


def say(client, text: str) -> dict:
    response = client.post("/api/messages", json={"text": text})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def log_in(client, name: str = "alice", password: str = "secret") -> None:
    response = client.post("/desk/login", data={"name": name, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


def at_desk(app, reason: str = "my card is blocked"):
    """Return a person's client whose conversation has been handed to the desk."""
    person = app.test_client()
    person.post("/api/conversation")
    say(person, "hello")
    state = say(person, f"{ASK_FOR_HUMAN}{reason}")
    assert state["host"]["id"] == "human", state
    return person, state


def queue(operator) -> list[dict]:
    response = operator.get("/desk/api/queue")
    assert response.status_code == 200
    return response.get_json()["conversations"]


def texts(messages: list[dict], role: str | None = None) -> list[str]:
    return [m.get("text") for m in messages if role is None or m["role"] == role]


def test_handoff_to_the_desk_opens_a_manual_session_with_transcript_and_reason(app, desk: Desk):
    person, state = at_desk(app, "my card is blocked")

    assert "You are now talking to Support team." in texts(state["messages"], "notice")
    assert any(t.startswith("Connecting you with our Support team") for t in texts(state["messages"], "bot"))
    operator = app.test_client()
    log_in(operator)
    (stay,) = [s for s in queue(operator) if s["reason"] == "my card is blocked"]
    assert stay["from_host"] == {"id": "alpha", "title": "Alpha Bot"}
    assert stay["status"] == "waiting"

    session = desk.session(stay["session_id"])
    assert session["mode"] == "manual"
    assert session["metadata"]["reason"] == "my card is blocked"
    assert session["metadata"]["from_host"] == "alpha"
    assert session["metadata"]["conversation_id"] == stay["conversation_id"]
    assert [line["text"] for line in session["metadata"]["transcript"]] == [
        "hello",
        "Alpha Bot heard: hello",
        f"{ASK_FOR_HUMAN}my card is blocked",
        "Let me find you a person.",
    ]
    assert "Alpha Bot" in session["title"] and "my card is blocked" in session["title"]


def test_person_messages_become_customer_events_and_replies_reach_the_person_once(app, desk: Desk, bots):
    person, state = at_desk(app)
    cursor = max(m["id"] for m in state["messages"])
    say(person, "is anyone there?")
    operator = app.test_client()
    log_in(operator)
    conversation_id = queue(operator)[-1]["conversation_id"]
    stay = queue(operator)[-1]

    for body in (
        {"text": "Hi, Alice here.", "as": "operator"},
        {"text": "Checking your card now.", "as": "assistant"},
    ):
        response = operator.post(f"/desk/api/conversations/{conversation_id}/messages", json=body)
        assert response.status_code == 200, response.get_json()

    events = desk.events(stay["session_id"])
    assert [(e["source"], e["data"]["message"]) for e in events if e["kind"] == "message"] == [
        ("customer", "is anyone there?"),
        ("human_agent", "Hi, Alice here."),
        ("human_agent_on_behalf_of_ai_agent", "Checking your card now."),
    ]
    updates = person.get(f"/api/updates?after={cursor}").get_json()
    assert updates["live"] is True
    operator_lines = [m for m in updates["messages"] if m["role"] == "bot"]
    assert [(m["text"], m.get("sender")) for m in operator_lines] == [
        ("Hi, Alice here.", "alice"),
        ("Checking your card now.", None),
    ]
    assert all(m["host"] == "human" for m in operator_lines)
    # Read again (a reload, a second tab): the same messages, once each.
    again = person.get(f"/api/updates?after={cursor}").get_json()
    assert [m["id"] for m in again["messages"]] == [m["id"] for m in updates["messages"]]
    full = person.post("/api/conversation").get_json()["messages"]
    assert texts(full).count("Hi, Alice here.") == 1
    assert bots["alpha"].messages_from(conversation_id)[-1].startswith(ASK_FOR_HUMAN), (
        "the bot heard nothing more"
    )


def test_a_reply_made_straight_through_parlant_reaches_the_person_through_the_stays_reader(app, desk: Desk):
    person, state = at_desk(app)
    cursor = max(m["id"] for m in state["messages"])
    operator = app.test_client()
    log_in(operator)
    conversation_id = queue(operator)[-1]["conversation_id"]
    stream = open_test_stream(person, f"/api/events?after={cursor}")
    assert stream.next("state").data["live"] is True

    # Another Parlant client answers: the stay's reader relays it and wakes the stream.
    stay = queue(operator)[-1]
    requests.post(
        f"{desk.url}/sessions/{stay['session_id']}/events",
        json={
            "kind": "message",
            "source": "human_agent",
            "message": "Bob here.",
            "participant": {"display_name": "Bob"},
        },
        headers={"Authorization": f"Bearer {DESK_TOKEN}"},
        timeout=10,
    ).raise_for_status()
    message = stream.next("message").data
    stream.close()
    assert (message["text"], message["sender"]) == ("Bob here.", "Bob")
    assert (
        operator.get(f"/desk/api/conversations/{conversation_id}").get_json()["stay"]["status"] == "answered"
    )


def test_operator_hands_back_with_the_usual_arrival_message(app, desk: Desk, bots):
    person, state = at_desk(app)
    cursor = max(m["id"] for m in state["messages"])
    operator = app.test_client()
    log_in(operator)
    conversation_id = queue(operator)[-1]["conversation_id"]
    session_id = queue(operator)[-1]["session_id"]

    response = operator.post(f"/desk/api/conversations/{conversation_id}/hand-back", json={"host_id": "beta"})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["live"] is False
    assert bots["beta"].messages_from(conversation_id) == [
        f'/handoff{{"from_host":"{desk.url.replace("127.0.0.1", "localhost")}"}}'
    ]
    update = person.get(f"/api/updates?after={cursor}").get_json()
    assert update["live"] is False and update["host"]["id"] == "beta"
    assert "Hello, this is Beta Bot." in texts(update["messages"], "bot")
    assert conversation_id not in [s["conversation_id"] for s in queue(operator)]
    assert desk.events(session_id)[-1]["data"]["outcome"] == "handed_back:beta"
    assert say(person, "back again")["messages"][-1]["text"] == "Beta Bot heard: back again"


def test_closed_conversation_leaves_the_queue_and_rejoins_when_the_person_writes(app, desk: Desk):
    person, _state = at_desk(app)
    operator = app.test_client()
    log_in(operator, "bob", "pw with spaces")
    conversation_id = queue(operator)[-1]["conversation_id"]

    assert operator.post(f"/desk/api/conversations/{conversation_id}/close", json={}).status_code == 200
    assert conversation_id not in [s["conversation_id"] for s in queue(operator)]
    assert any(
        "closed this conversation" in t
        for t in texts(person.post("/api/conversation").get_json()["messages"])
    )

    say(person, "one more thing")
    (stay,) = [s for s in queue(operator) if s["conversation_id"] == conversation_id]
    assert stay["from_host"]["id"] == "alpha"
    assert [e["data"]["message"] for e in desk.events(stay["session_id"]) if e["kind"] == "message"] == [
        "one more thing"
    ]


def test_operator_can_take_a_conversation(app, desk: Desk):
    at_desk(app)
    operator = app.test_client()
    log_in(operator, "bob", "pw with spaces")
    conversation_id = queue(operator)[-1]["conversation_id"]
    response = operator.post(f"/desk/api/conversations/{conversation_id}/take", json={})
    assert response.get_json()["stay"]["taken_by"] == "bob"
    assert queue(operator)[-1]["taken_by"] == "bob"


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "hi", "as": "robot"}, "not an object"])
def test_operator_message_that_is_not_valid_is_refused(app, desk: Desk, body):
    at_desk(app)
    operator = app.test_client()
    log_in(operator)
    conversation_id = queue(operator)[-1]["conversation_id"]
    response = operator.post(f"/desk/api/conversations/{conversation_id}/messages", json=body)
    assert response.status_code == 400


def test_wrong_password_or_unknown_operator_is_refused(app):
    client = app.test_client()
    for name, password in [("alice", "wrong"), ("mallory", "secret"), ("", "")]:
        response = client.post("/desk/login", data={"name": name, "password": password})
        assert response.status_code == 401
    assert client.get("/desk/api/queue").status_code == 401


def test_login_goes_back_only_to_desk_pages(app):
    client = app.test_client()
    for target, expected in [
        ("/desk/", "/desk/"),
        ("https://evil.example/desk", "/desk"),
        ("//evil.example", "/desk"),
    ]:
        response = client.post(f"/desk/login?next={target}", data={"name": "alice", "password": "secret"})
        assert response.headers["Location"] == expected


def test_desk_api_refuses_callers_without_the_token(desk: Desk):
    for path in ["/agents", "/sessions", "/chat/", "/docs", "/openapi.json"]:
        assert requests.get(f"{desk.url}{path}", timeout=10).status_code == 401, path
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.get(f"{desk.url}/sessions", headers=wrong, timeout=10).status_code == 401
    assert requests.get(f"{desk.url}/healthz", timeout=10).status_code == 200


def test_desk_refuses_agent_setup_and_ai_replies_even_with_the_token(app, desk: Desk):
    at_desk(app)
    operator = app.test_client()
    log_in(operator)
    session_id = queue(operator)[-1]["session_id"]
    auth = {"Authorization": f"Bearer {DESK_TOKEN}"}
    ai_reply = requests.post(
        f"{desk.url}/sessions/{session_id}/events",
        json={"kind": "message", "source": "ai_agent"},
        headers=auth,
        timeout=10,
    )
    assert ai_reply.status_code == 403
    new_agent = requests.post(
        f"{desk.url}/agents", json={"name": "x", "description": "y"}, headers=auth, timeout=10
    )
    assert new_agent.status_code == 403
    to_auto = requests.patch(
        f"{desk.url}/sessions/{session_id}", json={"mode": "auto"}, headers=auth, timeout=10
    )
    assert to_auto.status_code == 200 and to_auto.json()["mode"] == "manual"


def desk_rules() -> list[str]:
    """Return every route under /desk except the login page, from a throwaway app."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE": str(Path(tmp) / "db.sqlite"), "SECRET_KEY": "x"})
        return sorted(
            f"{method} {rule.rule}"
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/desk") and rule.endpoint != "console.login"
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
        )


@pytest.mark.parametrize("route", desk_rules())
def test_every_desk_route_needs_an_operator_login(app, route):
    method, rule = route.split(" ", 1)
    path = rule.replace("<conversation_id>", "some-conversation")
    response = app.test_client().open(path, method=method, json={})
    if path.startswith("/desk/api/"):
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/desk/login")


def test_the_desk_never_generates(app, desk: Desk):
    person, _state = at_desk(app)
    say(person, "please help")
    operator = app.test_client()
    log_in(operator)
    conversation_id = queue(operator)[-1]["conversation_id"]
    operator.post(
        f"/desk/api/conversations/{conversation_id}/messages", json={"text": "Sure.", "as": "assistant"}
    )
    say(person, "thanks")
    time.sleep(1)  # Parlant processes customer events in the background.
    assert not desk.marker.exists(), desk.marker.read_text()


def test_offline_generators_refuse_loudly_and_leave_the_marker(tmp_path):
    # Run in a child process: importing Parlant reads $PARLANT_HOME and sets up its own logging.
    script = """
import asyncio, sys
from pathlib import Path
from desk.nlp import GenerationRefused, OfflineNLPService, HashingEmbedder
from parlant.core.engines.alpha.message_generator import MessageSchema

async def main():
    service = OfflineNLPService(Path(sys.argv[1]))
    vectors = (await (await service.get_embedder()).embed(["card blocked", "card blocked", "loan"])).vectors
    assert vectors[0] == vectors[1] != vectors[2] and len(vectors[0]) == HashingEmbedder().dimensions
    generator = await service.get_schematic_generator(MessageSchema)
    try:
        await generator.generate("write a reply")
    except GenerationRefused as exc:
        print("refused:", exc)
    else:
        raise SystemExit("generated")

asyncio.run(main())
"""
    marker = tmp_path / GENERATION_MARKER
    env = {**os.environ, "PARLANT_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(marker)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused: the desk was asked to generate" in result.stdout
    assert "MessageSchema" in marker.read_text()


@contextmanager
def running_chatroom(
    config_path: Path, state_dir: Path, port: int, log_path: Path
) -> Iterator[subprocess.Popen]:
    env = {**env_for(config_path, state_dir), "CHATROOM_DESK_WAIT": "2", "CHATROOM_RATE_PER_CLIENT": "0"}
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatroom", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/healthz", process, "the chatroom")
            yield process
        finally:
            stop(process, signal.SIGKILL)


def test_restarting_desk_and_chatroom_mid_conversation_loses_and_doubles_nothing(bots, tmp_path):
    desk_port, chatroom_port = free_port(also_free_at=18), free_port()
    desk_url, chatroom_url = f"http://127.0.0.1:{desk_port}", f"http://127.0.0.1:{chatroom_port}"
    config_path = tmp_path / "handoff_config.yml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "handoff_hosts": {
                    **{host_id: {"title": host.title, "url": host.url} for host_id, host in bots.items()},
                    "human": {"title": "Support team", "url": desk_url, "kind": "parlant"},
                }
            }
        )
    )
    state_dir, log = tmp_path / "state", tmp_path / "processes.log"
    person = Person(chatroom_url, state_dir)
    operator = requests.Session()

    def operator_says(conversation_id: str, text: str) -> None:
        response = operator.post(
            f"{chatroom_url}/desk/api/conversations/{conversation_id}/messages",
            json={"text": text},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    def person_sees() -> list[str]:
        person.http.get(f"{chatroom_url}/api/updates?after=0", timeout=30).raise_for_status()
        return texts(person.start()["messages"])

    with running_desk(config_path, state_dir, desk_url, log) as desk:
        with running_chatroom(config_path, state_dir, chatroom_port, log):
            person.start()
            person.say(f"{ASK_FOR_HUMAN}restart test")
            operator.post(
                f"{chatroom_url}/desk/login", data={"name": "alice", "password": "secret"}, timeout=30
            )
            conversation_id = person.conversation_id
            person.say("first question")
            operator_says(conversation_id, "first answer")
            assert "first answer" in person_sees()
            session_id = operator.get(f"{chatroom_url}/desk/api/queue", timeout=30).json()["conversations"][
                0
            ]["session_id"]
        # The chatroom is down (killed); an operator still answers through Parlant.
        requests.post(
            f"{desk_url}/sessions/{session_id}/events",
            json={
                "kind": "message",
                "source": "human_agent",
                "message": "answer while you were away",
                "participant": {"display_name": "Bob"},
            },
            headers={"Authorization": f"Bearer {DESK_TOKEN}"},
            timeout=10,
        ).raise_for_status()
        stop(desk.process, signal.SIGKILL)

    with running_desk(config_path, state_dir, desk_url, log) as desk:
        with running_chatroom(config_path, state_dir, chatroom_port, log):
            person.say("second question")
            operator_says(conversation_id, "second answer")
            seen = person_sees()
            events = desk.events(session_id)

    # Each message once; one written while the chatroom was down is shown when it is next relayed.
    assert sorted(t for t in seen if t.endswith(("question", "answer", "away"))) == sorted(
        [
            "first question",
            "first answer",
            "answer while you were away",
            "second question",
            "second answer",
        ]
    )
    assert [(e["offset"], e["source"], e["data"]["message"]) for e in events if e["kind"] == "message"] == [
        (0, "customer", "first question"),
        (1, "human_agent", "first answer"),
        (2, "human_agent", "answer while you were away"),
        (3, "customer", "second question"),
        (4, "human_agent", "second answer"),
    ]
    assert not (state_dir / "desk" / "human" / GENERATION_MARKER).exists()


def test_waiting_person_sees_queue_place_and_estimated_wait(app, desk: Desk):
    first, _ = at_desk(app, "first in line")
    second, state = at_desk(app, "second in line")
    app.config["DESK_WAIT"] = 0
    info = second.get("/api/updates?after=0").get_json()["desk"]
    assert info["position"] == 2 and info["waiting"] is True
    assert info["estimated_wait_seconds"] is None, "no reply times yet to estimate from"
    assert info["back_to"] == {"id": "alpha", "title": "Alpha Bot"}
    assert info["operators_online"] == 0

    operator = app.test_client()
    log_in(operator)
    conversation_id = [s for s in queue(operator) if s["reason"] == "first in line"][0]["conversation_id"]
    operator.post(f"/desk/api/conversations/{conversation_id}/messages", json={"text": "On it."})
    info = second.get("/api/updates?after=0").get_json()["desk"]
    assert info["position"] == 1 and info["operators_online"] == 1
    assert info["estimated_wait_seconds"] is not None
    assert first.get("/api/updates?after=0").get_json()["desk"]["waiting"] is False


def test_the_estimated_wait_reads_reply_times_once_in_a_while_and_anew_after_a_reply(
    app, desk: Desk, monkeypatch
):
    first, _ = at_desk(app, "first in line")
    second, _ = at_desk(app, "second in line")
    app.config["DESK_WAIT"] = 0
    reads = []
    read_reply_waits = store.recent_reply_waits
    monkeypatch.setattr(store, "recent_reply_waits", lambda *a: reads.append(a[1]) or read_reply_waits(*a))

    for _ in range(3):
        assert second.get("/api/updates?after=0").get_json()["desk"]["estimated_wait_seconds"] is None
    assert reads == ["human"], "three page refreshes within the freshness period: one read"

    operator = app.test_client()
    log_in(operator)
    conversation_id = [s for s in queue(operator) if s["reason"] == "first in line"][0]["conversation_id"]
    operator.post(f"/desk/api/conversations/{conversation_id}/messages", json={"text": "On it."})
    info = second.get("/api/updates?after=0").get_json()["desk"]
    assert info["estimated_wait_seconds"] is not None and info["estimated_wait_seconds"] >= 0
    assert reads == ["human", "human"], "a relayed reply makes the next estimate read reply times anew"

    monkeypatch.setattr(stays, "ESTIMATE_FRESH_SECONDS", 0.0)
    second.get("/api/updates?after=0")
    assert reads == ["human"] * 3


def test_person_is_told_once_when_nobody_answers_in_time(app, desk: Desk):
    app.config["DESK_NO_ANSWER_AFTER"] = 0
    app.config["DESK_WAIT"] = 0
    person, _ = at_desk(app)
    for _ in range(2):
        notices = texts(person.get("/api/updates?after=0").get_json()["messages"], "notice")
        assert [t for t in notices if t.startswith("Nobody from Support team has answered yet")] == [
            "Nobody from Support team has answered yet. You can keep waiting, leave a message here "
            "for them to answer when they are back, or go back to Alpha Bot."
        ]


def test_person_can_end_the_human_conversation_and_go_back(app, desk: Desk, bots):
    person, _ = at_desk(app)
    operator = app.test_client()
    log_in(operator)
    (stay,) = queue(operator)

    response = person.post("/api/desk/leave", json={})

    assert response.status_code == 200, response.get_json()
    state = response.get_json()
    assert state["host"]["id"] == "alpha" and state["live"] is False
    assert "Hello, this is Alpha Bot." in texts(state["messages"], "bot")
    assert bots["alpha"].messages_from(stay["conversation_id"])[-1].startswith('/handoff{"from_host":')
    assert queue(operator) == []
    assert desk.events(stay["session_id"])[-1]["data"]["outcome"] == "left:alpha"
    assert person.post("/api/desk/leave", json={}).status_code == 409


def test_operator_typing_reaches_the_person_and_ends_with_the_message(app, desk: Desk, monkeypatch):
    person, state = at_desk(app)
    cursor = max(m["id"] for m in state["messages"])
    stream = open_test_stream(person, f"/api/events?after={cursor}")
    assert stream.next("state").data["typing"] is None
    operator = app.test_client()
    log_in(operator)
    (stay,) = queue(operator)
    typing_url = f"/desk/api/conversations/{stay['conversation_id']}/typing"

    assert operator.post(typing_url, json={"as": "operator"}).get_json() == {"typing": True, "name": "alice"}
    typing = stream.next_where("state", lambda state: state["typing"] is not None).data["typing"]
    assert typing["name"] == "alice" and 0 < typing["seconds_left"] <= 5
    assert typing["until"] == pytest.approx(time.time() + typing["seconds_left"], abs=1)

    response = operator.post(f"/desk/api/conversations/{stay['conversation_id']}/messages",
                             json={"text": "Here I am."})
    assert response.status_code == 200
    message = stream.next("message").data
    assert (message["text"], message.get("sender")) == ("Here I am.", "alice")
    assert stream.next_where("state", lambda state: True).data["typing"] is None
    # Typing is never part of the transcript, nor of the session's history at the desk.
    full = person.post("/api/conversation").get_json()["messages"]
    assert not any("typing" in (m.get("text") or "") for m in full)
    assert [e for e in desk.events(stay["session_id"]) if e["kind"] == "status"] == []

    # As the assistant: the desk's title; it runs out by itself after TYPING_SECONDS.
    monkeypatch.setattr("chatroom.stays.TYPING_SECONDS", 0.5)
    operator.post(typing_url, json={"as": "assistant"})
    assert stream.next_where("state", lambda state: state["typing"] is not None).data["typing"]["name"] == (
        "Support team"
    )
    assert stream.next_where("state", lambda state: state["typing"] is None), "gone once it ran out"
    stream.close()


def test_typing_stops_when_the_operator_empties_the_draft(app, desk: Desk):
    person, _ = at_desk(app)
    operator = app.test_client()
    log_in(operator)
    (stay,) = queue(operator)
    typing_url = f"/desk/api/conversations/{stay['conversation_id']}/typing"
    operator.post(typing_url, json={})
    assert person.get("/api/updates?after=0").get_json()["typing"]["name"] == "alice"
    assert operator.post(typing_url, json={"typing": False}).get_json()["typing"] is False
    assert person.get("/api/updates?after=0").get_json()["typing"] is None
    assert operator.post(typing_url, json={"as": "robot"}).status_code == 400


def db_cursor(person) -> int:
    return max(m["id"] for m in person.post("/api/conversation").get_json()["messages"])


def test_operator_presence_is_online_away_or_offline(app, desk: Desk, monkeypatch):
    clock = [time.monotonic()]
    monkeypatch.setattr(
        "chatroom.shared.memory.time",
        type("Clock", (), {"monotonic": staticmethod(lambda: clock[0]), "time": staticmethod(time.time)}),
    )
    person, _ = at_desk(app)
    app.config["DESK_WAIT"] = 0

    def states(client) -> dict[str, str]:
        response = client.get("/desk/api/queue")
        assert response.status_code == 200
        return {entry["name"]: entry["state"] for entry in response.get_json()["operators"]}

    def online() -> int:
        return person.get("/api/updates?after=0").get_json()["desk"]["operators_online"]

    alice, bob = app.test_client(), app.test_client()
    log_in(alice)
    assert states(alice) == {"alice": "online", "bob": "offline"}, "bob never opened the console"
    assert online() == 1
    log_in(bob, "bob", "pw with spaces")
    assert states(bob) == {"alice": "online", "bob": "online"}
    assert online() == 2

    response = bob.post("/desk/api/presence", json={"state": "away"})
    assert response.status_code == 200
    assert {e["name"]: e["state"] for e in response.get_json()["operators"]}["bob"] == "away"
    assert states(bob)["bob"] == "away", "a console request keeps the chosen state"
    assert online() == 1

    clock[0] += 31  # bob's console goes quiet; alice's keeps asking
    assert states(alice) == {"alice": "online", "bob": "offline"}
    assert online() == 1
    alice.post("/desk/api/presence", json={"state": "away"})
    assert online() == 0
    alice.post("/desk/api/presence", json={"state": "online"})
    assert online() == 1
    alice.post("/desk/logout")
    assert online() == 0, "logging out is offline at once"
    assert bob.post("/desk/api/presence", json={"state": "asleep"}).status_code == 400


def test_arrival_with_nobody_online_says_so_once_and_the_message_left_waits_in_the_queue(app, desk: Desk):
    person, state = at_desk(app)
    cursor = max(m["id"] for m in state["messages"])
    update = person.get(f"/api/updates?after={cursor}").get_json()
    assert update["desk"]["operators_online"] == 0 and update["desk"]["back_to"]["title"] == "Alpha Bot"
    # The page's desk bar says it; the transcript does not say it a second time.
    assert not any("online" in text for text in texts(update["messages"], "notice"))
    say(person, "please call me back")
    operator = app.test_client()
    log_in(operator)
    (stay,) = queue(operator)
    assert stay["last_text"] == "please call me back" and stay["status"] == "waiting"
    assert [e["data"]["message"] for e in desk.events(stay["session_id"]) if e["kind"] == "message"] == [
        "please call me back"
    ]
    assert person.get("/api/updates?after=0").get_json()["desk"]["operators_online"] == 1


def test_a_new_stay_is_read_at_once_on_its_announcement_and_turns_cause_no_sweeps(
    app, desk: Desk, monkeypatch
):
    # With the clock's sweep an hour away, only the announcement can start the new stay's reader.
    monkeypatch.setattr(stays, "SWEEP_SECONDS", 3600.0)
    sweeps = []
    listed = store.list_open_stay_ids
    monkeypatch.setattr(store, "list_open_stay_ids", lambda db: sweeps.append(time.time()) or listed(db))
    person = app.test_client()
    person.post("/api/conversation")  # the first request starts the readers' supervisor: one sweep
    deadline = time.monotonic() + 10
    while not sweeps and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sweeps) == 1
    say(person, "hello")
    assert say(person, f"{ASK_FOR_HUMAN}my card is blocked")["host"]["id"] == "human"
    readers = app.extensions["stay_readers"]
    with person.session_transaction() as cookie:
        conversation_id = cookie["conversation_id"]
    with app.app_context():
        session_id = store.find_open_stay(store.get_db(), conversation_id).session_id
    deadline = time.monotonic() + 10
    while session_id not in readers.reading and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_id in readers.reading

    for text in ("are you there?", "hello?", "anyone?"):
        say(person, text)
    assert len(sweeps) == 1
