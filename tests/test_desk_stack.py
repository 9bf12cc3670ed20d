"""The human desk in the real stack: both Rasa bots, their action servers, the desk and the chatroom.

On the embedded setting this module starts its own stack (the shared one has no
desk, so the bots there offer exactly the hosts other tests expect); on the
scaled one it puts the scaled stack's desk in its config while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import desk_in_config
from tests.stack import Person, Stack, default_config, free_port, running_stack
from tests.test_desk import DESK_TOKEN, GENERATION_MARKER, OPERATORS
from tests.test_handoff_stack import ASK_FOR_SOMEONE_ELSE

pytestmark = [pytest.mark.stack, pytest.mark.both_settings]


@pytest.fixture(scope="module")
def desk_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Modules that are not marked both_settings (and import this fixture) get the embedded stack.
    if getattr(request, "param", "embedded") == "scaled":
        with desk_in_config(request.getfixturevalue("scaled_stack")) as stack:
            yield stack
        return
    config = default_config()
    config["handoff_hosts"]["human"] = {
        "title": "Support team",
        "url": f"http://localhost:{free_port(also_free_at=18)}",
        "kind": "parlant",
    }
    with pytest.MonkeyPatch.context() as env:
        # running_stack hands the environment to the launcher, which passes these on.
        env.setenv("DESK_API_TOKEN", DESK_TOKEN)
        env.setenv("CHATROOM_DESK_OPERATORS", OPERATORS)
        env.setenv("CHATROOM_DESK_WAIT", "3")
        try:
            with running_stack(config, tmp_path_factory.mktemp("desk-stack")) as stack:
                yield stack
        except RuntimeError as exc:
            pytest.fail(str(exc))


def parlant(stack: Stack, path: str, **params) -> dict | list:
    url = stack.hosts["human"].replace("localhost", "127.0.0.1")
    response = requests.get(
        f"{url}{path}", params=params, headers={"Authorization": f"Bearer {DESK_TOKEN}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def operator_session(stack: Stack) -> requests.Session:
    operator = requests.Session()
    response = operator.post(
        f"{stack.chatroom_url}/desk/login",
        data={"name": "alice", "password": "secret"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302
    return operator


def test_person_handed_to_the_desk_talks_to_an_operator_and_is_handed_back(desk_stack: Stack):
    stack = desk_stack
    person: Person = stack.person()
    person.start()
    person.say("hi")
    person.say(ASK_FOR_SOMEONE_ELSE)
    assert "Support team" in person.buttons()
    person.press("Support team")
    assert person.host == "human"
    conversation = person.conversation_id
    helpdesk_before = stack.user_texts("helpdesk", conversation)
    financial_before = stack.user_texts("financial", conversation)
    cursor = max(message["id"] for message in person.start()["messages"])

    operator = operator_session(stack)
    queue = operator.get(f"{stack.chatroom_url}/desk/api/queue", timeout=30).json()["conversations"]
    (stay,) = [s for s in queue if s["conversation_id"] == conversation]
    assert stay["from_host"]["id"] == "helpdesk"
    assert stay["reason"] == ASK_FOR_SOMEONE_ELSE

    # Parlant's own view: a manual session holding the reason and the whole bot transcript.
    session = parlant(stack, f"/sessions/{stay['session_id']}")
    assert session["mode"] == "manual"
    assert session["metadata"]["reason"] == ASK_FOR_SOMEONE_ELSE
    assert session["metadata"]["from_host"] == "helpdesk"
    transcript = session["metadata"]["transcript"]
    assert [line["text"] for line in transcript if line["role"] == "user"] == [
        "hi",
        ASK_FOR_SOMEONE_ELSE,
        "Support team",
    ]
    assert any(line["role"] == "bot" and line["host"] == "helpdesk" for line in transcript)

    person.say("my transfer to Sam bounced")
    reply = operator.post(
        f"{stack.chatroom_url}/desk/api/conversations/{conversation}/messages",
        json={"text": "Hello, this is Alice from support.", "as": "operator"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    update = person.http.get(f"{stack.chatroom_url}/api/updates", params={"after": cursor}, timeout=30).json()
    assert ("Hello, this is Alice from support.", "alice") in [
        (m.get("text"), m.get("sender")) for m in update["messages"] if m["role"] == "bot"
    ]
    events = parlant(stack, f"/sessions/{stay['session_id']}/events", min_offset=0, wait_for_data=0)
    assert [(e["source"], e["data"]["message"]) for e in events if e["kind"] == "message"] == [
        ("customer", "my transfer to Sam bounced"),
        ("human_agent", "Hello, this is Alice from support."),
    ]

    back = operator.post(
        f"{stack.chatroom_url}/desk/api/conversations/{conversation}/hand-back",
        json={"host_id": "financial"},
        timeout=60,
    )
    assert back.status_code == 200, back.text
    state = person.start()
    assert state["host"]["id"] == "financial"
    greeting = [m["text"] for m in state["messages"] if m["role"] == "bot" and m["host"] == "financial"]
    assert greeting and "Financial Assistant" in " ".join(greeting)

    # While at the desk, neither bot heard anything from this person.
    assert stack.user_texts("helpdesk", conversation) == helpdesk_before
    financial_after = stack.user_texts("financial", conversation)
    assert financial_after[: len(financial_before)] == financial_before
    arrivals = financial_after[len(financial_before) :]
    assert len(arrivals) == 1 and arrivals[0].startswith("/handoff")
    assert json.loads(arrivals[0][len("/handoff") :]) == {"from_host": stack.hosts["human"]}
    assert not (stack.state_dir / "desk" / "human" / GENERATION_MARKER).exists()


def test_every_desk_route_of_the_running_chatroom_needs_a_login(desk_stack: Stack):
    for method, path in [
        ("GET", "/desk"),
        ("GET", "/desk/api/queue"),
        ("POST", "/desk/api/conversations/x/close"),
    ]:
        response = requests.request(
            method, f"{desk_stack.chatroom_url}{path}", json={}, allow_redirects=False, timeout=30
        )
        assert response.status_code in (302, 401), (path, response.status_code)


def test_a_half_saved_config_shows_a_banner_in_the_console_while_the_last_good_one_serves(desk_stack: Stack):
    operator = operator_session(desk_stack)
    good = desk_stack.config_path.read_text()
    person = desk_stack.person()
    person.start()
    try:
        # What an editor leaves on disk halfway through saving.
        desk_stack.config_path.write_text(good[: len(good) // 2] + "\n  broken: [")
        queue = operator.get(f"{desk_stack.chatroom_url}/desk/api/queue", timeout=10).json()
        assert str(desk_stack.config_path) in queue["config_problem"]
        assert "not valid YAML" in queue["config_problem"]
        # The person is still served by the last good config.
        assert person.say("hello")["host"]["id"] == "helpdesk"
    finally:
        desk_stack.config_path.write_text(good)
    queue = operator.get(f"{desk_stack.chatroom_url}/desk/api/queue", timeout=10).json()
    assert queue["config_problem"] is None
