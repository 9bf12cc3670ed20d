"""A bot killed with SIGKILL between turns comes back with its slots, and the chatroom recovers by itself."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from handoff.run import ACTION_PORT_OFFSET, plan
from tests.stack import API_TOKEN, Person, Stack, free_port
from tests.test_restart import start_chatroom

pytestmark = pytest.mark.stack


def start_bot(part, action_server_url: str) -> subprocess.Popen:
    """Start the launcher's own command for a bot, pointed at an already running action server."""
    env = {**os.environ, **part.env, "ACTION_SERVER_URL": action_server_url}
    process = subprocess.Popen(
        part.command, shell=True, cwd=part.cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(part.health_url, timeout=2).ok:
                return process
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("the helpdesk bot did not start")


def private_helpdesk(stack: Stack, tmp_path, monkeypatch):
    """Plan a helpdesk bot of the test's own (port, tracker store) and a chatroom config naming it."""
    (tmp_path / "state").mkdir()
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path / "state"))
    config = stack.config()
    config["handoff_hosts"]["helpdesk"]["url"] = f"http://localhost:{free_port()}"
    config_path = tmp_path / "handoff_config.yml"
    config_path.write_text(yaml.safe_dump(config))
    bot = next(part for part in plan(config_path, API_TOKEN, 0) if part.name == "helpdesk")
    return bot, config_path, config["handoff_hosts"]["helpdesk"]["url"]


def private_chatroom(stack: Stack, tmp_path, config_path) -> tuple[subprocess.Popen, Person]:
    port = free_port()
    chatroom = start_chatroom(stack, tmp_path / "state", port, config_path)
    return chatroom, Person(f"http://127.0.0.1:{port}", tmp_path / "state")


def test_bot_killed_between_turns_keeps_its_slots(stack: Stack, tmp_path, monkeypatch):
    bot, config_path, bot_url = private_helpdesk(stack, tmp_path, monkeypatch)
    # The stack's action server does the form's work for the private bot.
    stack_actions = urlsplit(stack.hosts["helpdesk"]).port + ACTION_PORT_OFFSET
    action_server = f"http://127.0.0.1:{stack_actions}/webhook"
    process = start_bot(bot, action_server)
    chatroom, person = private_chatroom(stack, tmp_path, config_path)
    try:
        person.start()
        person.say("I want to open an incident")
        person.say("sam@example.com")
        tracker_url = f"{bot_url}/conversations/{person.conversation_id}/tracker"
        before = requests.get(tracker_url, params={"token": API_TOKEN}, timeout=10).json()
        assert before["slots"]["email"] == "sam@example.com"

        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        started = time.monotonic()
        person.say("high")
        assert time.monotonic() - started < 6
        assert person.texts("notice") == [
            "Helpdesk Assistant is not answering right now. Please try again in a moment."
        ]

        process = start_bot(bot, action_server)
        after = requests.get(tracker_url, params={"token": API_TOKEN}, timeout=10).json()
        assert after["slots"]["email"] == "sam@example.com"
        assert after["active_loop"] == before["active_loop"]
        assert after["slots"]["requested_slot"] == before["slots"]["requested_slot"]
        person.say("high")
        assert person.texts("bot"), "the same chatroom reaches the bot again without a restart"
        assert person.texts("notice") == []
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        chatroom.kill()
        chatroom.wait()


def test_bot_whose_action_server_is_down_is_reported_unavailable(stack: Stack, tmp_path, monkeypatch):
    bot, config_path, bot_url = private_helpdesk(stack, tmp_path, monkeypatch)
    process = start_bot(bot, f"http://127.0.0.1:{free_port()}/webhook")
    chatroom, person = private_chatroom(stack, tmp_path, config_path)
    try:
        person.start()
        started = time.monotonic()
        person.say("I want to open an incident")
        assert time.monotonic() - started < 6
        assert person.texts("bot") == []
        assert person.texts("notice") == [
            "Helpdesk Assistant is not answering right now. Please try again in a moment."
        ]
        tracker_url = f"{bot_url}/conversations/{person.conversation_id}/tracker"
        events = requests.get(tracker_url, params={"token": API_TOKEN}, timeout=10).json()["events"]
        assert [e for e in events if e["event"] == "user"] == [], "the message never reached the tracker"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        chatroom.kill()
        chatroom.wait()
