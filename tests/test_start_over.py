"""Start over: the person ends their conversation, even a wait at the desk, and it leaves their browser.

Against a real desk (``python -m desk``, Parlant in manual mode) and a real
chatroom (``python -m chatroom``), once through the API and once in headless
Chromium.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import yaml
from playwright.sync_api import Browser, expect

from chatroom.person import STARTED_OVER
from tests.browser import send
from tests.fakehost import FakeHost
from tests.stack import free_port
from tests.test_desk import ASK_FOR_HUMAN, Desk, ReasoningHost, running_chatroom, running_desk


@dataclass
class Room:
    url: str
    desk: Desk


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> Iterator[Room]:
    alpha, beta = ReasoningHost("Alpha Bot").start(), FakeHost("Beta Bot").start()
    root = tmp_path_factory.mktemp("start-over")
    desk_url = f"http://127.0.0.1:{free_port(also_free_at=18)}"
    config_path = root / "handoff_config.yml"
    config_path.write_text(yaml.safe_dump({"handoff_hosts": {
        "alpha": {"title": alpha.title, "url": alpha.url},
        "beta": {"title": beta.title, "url": beta.url},
        "human": {"title": "Support team", "url": desk_url, "kind": "parlant"},
    }}))
    log = root / "processes.log"
    try:
        with running_desk(config_path, root / "state", desk_url, log) as desk:
            port = free_port()
            with running_chatroom(config_path, root / "state", port, log):
                yield Room(f"http://127.0.0.1:{port}", desk)
    finally:
        alpha.stop()
        beta.stop()


def operator(room: Room) -> requests.Session:
    session = requests.Session()
    login = {"name": "alice", "password": "secret"}
    response = session.post(f"{room.url}/desk/login", data=login, allow_redirects=False, timeout=30)
    assert response.status_code == 302
    return session


def waiting(room: Room, console: requests.Session) -> dict[str, dict]:
    """Return the stays in the desk's queue, by conversation id."""
    queue = console.get(f"{room.url}/desk/api/queue", timeout=30).json()["conversations"]
    return {stay["conversation_id"]: stay for stay in queue}


def ended_by(room: Room, session_id: str) -> list[dict]:
    """Return the data of the custom events in a Parlant session (how the chatroom says a stay ended)."""
    return [event["data"] for event in room.desk.events(session_id) if event["kind"] == "custom"]


def test_start_over_at_the_desk_ends_the_stay_tells_parlant_and_leaves_nothing_behind(room: Room):
    person, console = requests.Session(), operator(room)
    person.post(f"{room.url}/api/conversation", json={}, timeout=30)
    state = person.post(f"{room.url}/api/messages", json={"text": f"{ASK_FOR_HUMAN}my card is blocked"},
                        timeout=30).json()
    assert state["host"]["id"] == "human"
    (stay,) = [s for s in waiting(room, console).values() if s["reason"] == "my card is blocked"]
    conversation_id = stay["conversation_id"]

    fresh = person.post(f"{room.url}/api/start-over", json={}, timeout=30)

    assert fresh.status_code == 200
    assert fresh.json() == {"host": {"id": "alpha", "title": "Alpha Bot"}, "messages": []}
    assert person.post(f"{room.url}/api/conversation", json={}, timeout=30).json()["messages"] == []
    assert conversation_id not in waiting(room, console)
    assert ended_by(room, stay["session_id"]) == [
        {"event": "stay_ended", "outcome": "started_over", "by": "the person"}
    ]
    assert room.desk.session(stay["session_id"])["metadata"]["outcome"] == "started_over"
    left = console.get(f"{room.url}/desk/api/conversations/{conversation_id}", timeout=30).json()
    assert left["live"] is False and left["stay"]["outcome"] == "started_over"
    assert [m["text"] for m in left["messages"] if m["role"] == "notice"][-1] == STARTED_OVER


@pytest.mark.browser
def test_start_over_in_the_browser_clears_the_page_and_a_reload_shows_nothing_of_before(
    room: Room, browser: Browser
):
    page = browser.new_context().new_page()
    page.goto(room.url)
    expect(page.locator("#host-title")).to_have_text("Alpha Bot")
    send(page, f"{ASK_FOR_HUMAN}my bank account is locked")
    expect(page.locator("#host-title")).to_have_text("Support team")
    expect(page.locator("#desk-bar")).to_be_visible()
    console = operator(room)
    (stay,) = [s for s in waiting(room, console).values() if s["reason"] == "my bank account is locked"]

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#start-over")

    expect(page.locator(".message")).to_have_count(0)
    expect(page.locator("#desk-bar")).to_be_hidden()
    expect(page.locator("#host-title")).to_have_text("Alpha Bot")
    send(page, "hello again")
    expect(page.locator(".message-bot").last).to_have_text("Alpha Bot heard: hello again")
    page.reload()
    expect(page.locator(".message-bot")).to_have_text(["Alpha Bot heard: hello again"])
    expect(page.get_by_text("my bank account is locked")).to_have_count(0)
    assert stay["conversation_id"] not in waiting(room, console)
    assert ended_by(room, stay["session_id"])[-1]["outcome"] == "started_over"
    page.context.close()

