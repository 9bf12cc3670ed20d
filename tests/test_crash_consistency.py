"""A handoff cut short by a crash is finished, not left half-done: a worker is killed at each step."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from chatroom.faults import POINTS
from tests.fakehost import HAND_TO_ID, FakeHost
from tests.processes import Chatroom, running_chatroom
from tests.stack import free_port
from tests.test_desk import ASK_FOR_HUMAN, DESK_TOKEN, OPERATORS, ReasoningHost, running_desk


@pytest.fixture
def bots() -> Iterator[dict[str, FakeHost]]:
    started = {"alpha": ReasoningHost("Alpha Bot").start(), "beta": FakeHost("Beta Bot").start()}
    yield started
    for host in started.values():
        host.stop()


def config_for(bots: dict[str, FakeHost], desk_url: str | None = None) -> dict:
    hosts = {host_id: {"title": host.title, "url": host.url} for host_id, host in bots.items()}
    if desk_url:
        hosts["human"] = {"title": "Support team", "url": desk_url, "kind": "parlant"}
    return {"handoff_hosts": hosts, "entry": "alpha"}


def transcript(person: requests.Session, chatroom: Chatroom) -> dict:
    response = person.post(f"{chatroom.url}/api/conversation", json={}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_host(person: requests.Session, chatroom: Chatroom, host_id: str, timeout: float = 60) -> dict:
    """Wait until the conversation is with ``host_id`` (the chatroom finishes the handoff by itself)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = transcript(person, chatroom)
        except requests.ConnectionError:
            state = None
        if state is not None and state["host"]["id"] == host_id:
            return state
        assert time.monotonic() < deadline, f"the conversation never reached {host_id}: {state}"
        time.sleep(0.2)


def hand_off_and_crash(person: requests.Session, chatroom: Chatroom, text: str) -> None:
    """Ask for the handoff; the worker dies on the way, so the request fails or comes back cut short."""
    try:
        person.post(f"{chatroom.url}/api/messages", json={"text": text}, timeout=30)
    except requests.ConnectionError:
        pass


@pytest.mark.parametrize("point", POINTS)
def test_a_handoff_to_a_bot_cut_short_is_finished_once_with_one_first_greeting(bots, tmp_path, point):
    env = {"CHATROOM_FAULT": point}
    with running_chatroom(config_for(bots), tmp_path, env) as chatroom:
        person = requests.Session()
        transcript(person, chatroom)
        hand_off_and_crash(person, chatroom, f"{HAND_TO_ID}beta")
        state = wait_for_host(person, chatroom, "beta")
        assert "fault point" in chatroom.log() and point in chatroom.log()

    texts = [message.get("text") for message in state["messages"]]
    assert texts.count("You are now talking to Beta Bot.") == 1
    assert texts.count("Hello, this is Beta Bot.") == 1
    arrivals = [meta["handoff"]["handoff_id"] for meta in bots["beta"].metadata if meta]
    # Told once, or (killed after telling it) told again as the same handoff.
    assert len(arrivals) == (2 if point == "after_arrival" else 1)
    assert len(set(arrivals)) == 1


def test_a_handoff_to_the_desk_cut_short_leaves_one_stay_an_operator_can_close(bots, tmp_path):
    desk_port = free_port(also_free_at=18)
    desk_url = f"http://127.0.0.1:{desk_port}"
    config = config_for(bots, desk_url)
    env = {
        "CHATROOM_FAULT": "after_arrival", "DESK_API_TOKEN": DESK_TOKEN, "CHATROOM_DESK_OPERATORS": OPERATORS,
    }
    with running_chatroom(config, tmp_path, env) as chatroom, running_desk(
        tmp_path / "handoff_config.yml", tmp_path / "state", desk_url, tmp_path / "desk.log"
    ):
        person = requests.Session()
        transcript(person, chatroom)
        hand_off_and_crash(person, chatroom, f"{ASK_FOR_HUMAN}my card is blocked")
        state = wait_for_host(person, chatroom, "human")
        assert [m.get("text") for m in state["messages"]].count("You are now talking to Support team.") == 1

        operator = requests.Session()
        credentials = {"name": "alice", "password": "secret"}
        login = operator.post(f"{chatroom.url}/desk/login", data=credentials, timeout=10)
        assert login.status_code == 200
        queue = operator.get(f"{chatroom.url}/desk/api/queue", timeout=10).json()["conversations"]
        assert len(queue) == 1, "one stay, not an orphan beside it"
        closing = operator.post(
            f"{chatroom.url}/desk/api/conversations/{queue[0]['conversation_id']}/close", json={}, timeout=10
        )
        assert closing.status_code == 200, closing.text
        assert operator.get(f"{chatroom.url}/desk/api/queue", timeout=10).json()["conversations"] == []
