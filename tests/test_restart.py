"""Routing lives in the chatroom's database, so a restart (even kill -9) loses nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from handoff.config import REPO_ROOT
from tests.stack import Person, Stack, free_port
from tests.test_handoff_stack import hand_over

pytestmark = [pytest.mark.stack, pytest.mark.both_settings]


def start_chatroom(stack: Stack, state_dir, port: int, config_path=None) -> subprocess.Popen:
    config_path = config_path or stack.config_path
    env = {
        **os.environ, **stack.shared_settings(),
        "HANDOFF_CONFIG": str(config_path), "HANDOFF_STATE_DIR": str(state_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "chatroom", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.RequestException:
            # Refused, or accepted by gunicorn before its worker is up to answer.
            time.sleep(0.2)
    process.kill()
    pytest.fail("chatroom did not start")


def test_routing_survives_a_chatroom_restart(stack: Stack, tmp_path):
    state_dir = tmp_path / "state"
    port = free_port()
    chatroom = start_chatroom(stack, state_dir, port)
    person = Person(f"http://127.0.0.1:{port}", state_dir)
    try:
        person.start()
        person.say("hi")
        hand_over(person, "Financial Assistant")
        before = person.start()
        conversation = person.conversation_id
        os.kill(chatroom.pid, signal.SIGKILL)
        chatroom.wait()

        chatroom = start_chatroom(stack, state_dir, port)
        after = person.start()

        assert person.conversation_id == conversation
        assert after == before
        assert after["host"]["id"] == "financial"
        person.say("are you still there?")
        assert stack.user_texts("financial", conversation)[-1] == "are you still there?"
    finally:
        chatroom.kill()
        chatroom.wait()
