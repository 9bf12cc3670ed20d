"""The chatroom's API and routing, against scripted hosts (fast, no Rasa)."""
from __future__ import annotations

import json
import time

import pytest
import yaml

from chatroom import create_app
from tests.fakehost import HAND_TO_ID, HAND_TO_URL, HAND_WITH, FakeHost


@pytest.fixture
def hosts():
    started = {"alpha": FakeHost("Alpha Bot").start(), "beta": FakeHost("Beta Bot").start()}
    yield started
    for host in started.values():
        host.stop()


@pytest.fixture
def app(tmp_path, monkeypatch, hosts):
    config = {
        "handoff_hosts": {
            host_id: {"title": host.title, "url": host.url} for host_id, host in hosts.items()
        }
    }
    path = tmp_path / "handoff_config.yml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("HANDOFF_CONFIG", str(path))
    return create_app({
        "TESTING": True,
        "DATABASE": str(tmp_path / "chatroom.sqlite"),
        "SECRET_KEY": "test",
        "HOST_TIMEOUT": 2,
    })


@pytest.fixture
def client(app):
    client = app.test_client()
    assert client.post("/api/conversation").status_code == 200
    return client


def say(client, text: str) -> dict:
    response = client.post("/api/messages", json={"text": text})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def texts(state: dict, role: str) -> list[str]:
    return [m.get("text") for m in state["messages"] if m["role"] == role]


def test_new_conversation_starts_with_the_entry_host(client):
    state = client.post("/api/conversation").get_json()
    assert state == {"host": {"id": "alpha", "title": "Alpha Bot"}, "messages": []}


def test_cookie_is_http_only_and_a_forged_one_gets_a_new_conversation(app, client):
    say(client, f"{HAND_TO_ID}beta")
    cookie = client.get_cookie("chatroom")
    assert cookie.http_only and cookie.same_site == "Lax"
    forger = app.test_client()
    payload, _, signature = cookie.value.rpartition(".")
    forger.set_cookie("chatroom", f"{payload}.{signature[::-1]}")
    assert forger.post("/api/conversation").get_json()["host"]["id"] == "alpha"


def test_message_reaches_only_the_current_host(client, hosts):
    state = say(client, "hello")
    assert texts(state, "bot") == ["Alpha Bot heard: hello"]
    assert hosts["beta"].received == []


def test_handoff_switches_and_returns_the_new_greeting(client, hosts):
    state = say(client, f"{HAND_TO_URL}{hosts['beta'].url}/")
    assert state["host"]["id"] == "beta"
    assert texts(state, "notice") == ["You are now talking to Beta Bot."]
    assert texts(state, "bot") == ["Hello, this is Beta Bot."]
    sender = hosts["beta"].received[0][0]
    assert hosts["beta"].received == [(sender, f'/handoff{{"from_host":"{hosts["alpha"].url}"}}')]

    say(client, "anyone there?")
    assert hosts["alpha"].messages_from(sender)[-1].startswith(HAND_TO_URL)
    assert hosts["beta"].messages_from(sender)[-1] == "anyone there?"


def test_the_envelope_reaches_the_next_host_masked_and_naming_the_host_really_left(app, client, hosts):
    payload = {
        "handoff_to": "beta", "reason": "out_of_domain", "summary": "Wants to pay; email jane@example.org",
        "slots": {"email": "jane@example.org"}, "from_host": "http://elsewhere:1", "language": "en",
    }
    assert say(client, f"{HAND_WITH}{json.dumps(payload)}")["host"]["id"] == "beta"
    sender = hosts["beta"].received[0][0]
    envelope = hosts["beta"].metadata[0]["handoff"]
    assert len(envelope.pop("handoff_id")) == 16
    assert envelope == {
        "reason": "out_of_domain", "summary": "Wants to pay; email j***@e***.org",
        "slots": {"email": "j***@e***.org"}, "language": "en",
        "from_host": hosts["alpha"].url, "conversation_id": sender,
    }


def test_a_trusted_host_gets_the_envelope_unmasked(app, client, hosts, tmp_path):
    path = tmp_path / "handoff_config.yml"
    config = yaml.safe_load(path.read_text())
    config["handoff_hosts"]["beta"]["trusted"] = True
    path.write_text(yaml.safe_dump(config))
    payload = {"handoff_to": "beta", "reason": "named_target", "summary": "email jane@example.org"}
    say(client, f"{HAND_WITH}{json.dumps(payload)}")
    assert hosts["beta"].metadata[0]["handoff"]["summary"] == "email jane@example.org"


def test_handoff_by_id_only_is_accepted(client):
    assert say(client, f"{HAND_TO_ID}beta")["host"]["id"] == "beta"


def test_history_survives_a_new_app_on_the_same_database(app, client):
    say(client, f"{HAND_TO_ID}beta")
    before = client.post("/api/conversation").get_json()
    restarted = create_app({**app.config, "TESTING": True})
    again = restarted.test_client()
    again.set_cookie("chatroom", client.get_cookie("chatroom").value)
    assert again.post("/api/conversation").get_json() == before


def test_buttons_are_referenced_by_id_and_only_from_the_latest_reply(client, hosts, monkeypatch):
    def reply_with_buttons(sender, message):
        hosts["alpha"].received.append((sender, message))
        return [{"text": "Pick one", "buttons": [{"title": "Beta", "payload": f"{HAND_TO_ID}beta"}]}]

    monkeypatch.setattr(hosts["alpha"], "reply", reply_with_buttons)
    state = say(client, "options please")
    button = state["messages"][-1]["buttons"][0]
    assert button == {"id": button["id"], "title": "Beta"}, "payloads stay on the server"

    say(client, "something else")
    stale = client.post("/api/messages", json={"button": button["id"]})
    assert stale.status_code == 400
    assert "no longer active" in stale.get_json()["error"]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"text": ""}, 400),
        ({"text": "   "}, 400),
        ({"text": 5}, 400),
        ({"text": "x" * 2001}, 400),
        ({"button": "not-an-id"}, 400),
        ({"button": "999:0"}, 400),
        ([1, 2], 400),
    ],
)
def test_bad_messages_are_refused_before_any_host_call(client, hosts, body, status):
    response = client.post("/api/messages", json=body)
    assert response.status_code == status
    assert response.get_json()["error"]
    assert hosts["alpha"].received == []


def test_oversized_body_is_refused(client, hosts):
    response = client.post("/api/messages", data="x" * (17 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert hosts["alpha"].received == []


def test_message_without_conversation_is_refused(app):
    response = app.test_client().post("/api/messages", json={"text": "hi"})
    assert response.status_code == 409


def test_host_that_is_down_leaves_the_person_where_they_are(client, hosts):
    hosts["beta"].stop()
    state = say(client, f"{HAND_TO_ID}beta")
    assert state["host"]["id"] == "alpha"
    assert texts(state, "notice") == [
        "Beta Bot is unavailable right now, so you are still talking to Alpha Bot."
    ]
    assert texts(say(client, "still here"), "bot") == ["Alpha Bot heard: still here"]


def test_page_is_served_with_a_content_security_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "typed",
    [
        '/trigger_handoff{"handoff_to":"beta"}',
        ' /handoff{"from_host":"https://evil"}',
        '/greet{"slot":"v"}',
        "\u00a0/ \u2003//restart",
        "\u200b/restart",
    ],
)
def test_typed_commands_never_reach_the_host(client, hosts, typed):
    response = client.post("/api/messages", json={"text": typed})
    assert response.status_code == 400
    assert "without the slash" in response.get_json()["error"]
    assert hosts["alpha"].received == []
    assert client.post("/api/conversation").get_json()["messages"] == []


def test_a_slash_inside_a_message_is_fine(client, hosts):
    say(client, "my laptop/desktop both fail")
    assert hosts["alpha"].received[-1][1] == "my laptop/desktop both fail"


def test_raw_commands_pass_only_when_the_development_setting_allows_them(app, client, hosts):
    app.config["ALLOW_COMMANDS"] = True
    say(client, "/greet")
    assert hosts["alpha"].received[-1][1] == "/greet"


@pytest.mark.parametrize("key", ["conversation_id", "sender"])
def test_request_naming_another_conversation_is_refused(client, hosts, key):
    response = client.post("/api/messages", json={"text": "hi", key: "someone-else"})
    assert response.status_code == 403
    assert hosts["alpha"].received == []


def test_conversation_rate_limit_answers_429_with_retry_after(app, client, hosts):
    app.config["RATE_PER_CONVERSATION"] = 3
    for _ in range(3):
        say(client, "hello")
    response = client.post("/api/messages", json={"text": "one more"})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert len(hosts["alpha"].received) == 3


def test_client_rate_limit_counts_every_conversation_of_one_address(app, hosts):
    app.config["RATE_PER_CLIENT"] = 2
    statuses = []
    for _ in range(3):
        other = app.test_client()
        other.post("/api/conversation")
        statuses.append(other.post("/api/messages", json={"text": "hi"}).status_code)
    assert statuses == [200, 200, 429]


def test_slow_host_gets_a_clear_message_within_the_turn_timeout(app, client, hosts):
    app.config["TURN_TIMEOUT"] = 1.0
    started = time.monotonic()
    state = say(client, "sleep 3")
    assert time.monotonic() - started < 2.5
    assert texts(state, "notice") == ["Alpha Bot is not answering right now. Please try again in a moment."]
    time.sleep(2.5)
    assert texts(say(client, "back?"), "bot") == ["Alpha Bot heard: back?"]


@pytest.mark.parametrize("message", ["fail with 500", "say nothing"])
def test_failing_or_silent_host_gets_a_clear_message_and_is_logged(client, hosts, caplog, message):
    state = say(client, message)
    assert texts(state, "notice") == ["Alpha Bot is not answering right now. Please try again in a moment."]
    assert "conversation=" in caplog.text and "host=alpha unavailable" in caplog.text
    assert texts(say(client, "hello"), "bot") == ["Alpha Bot heard: hello"]


def test_unexpected_error_answers_json_without_a_stack_trace(app, client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("chatroom.routing.Router.take_turn", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post("/api/messages", json={"text": "hi"})
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_foreign_origin_gets_no_cors_headers(client):
    response = client.post(
        "/api/conversation", headers={"Origin": "https://evil.example"}
    )
    assert not any(name.lower().startswith("access-control-") for name, _ in response.headers)
