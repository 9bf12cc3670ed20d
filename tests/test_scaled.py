"""The scaled stack shares one conversation between chatroom workers and bot replicas, losing nothing.

Which worker and which replica served a turn is read from what the chatroom's
workers logged: each logs, with its pid, the replica that served each turn.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from tests.stack import Person, Stack
from tests.test_helpdesk_skills import INCIDENT_NUMBER, fill_incident_form, unique_email
from tests.test_ordering import MESSAGES, post_all_at_once

pytestmark = pytest.mark.stack

# chatroom.hosts logs "conversation=<id> turn served by <replica url>", after the worker's pid.
TURN_SERVED = re.compile(r"\[(\d+)\]: conversation=(\S+) turn served by (\S+)")
LOG_DEADLINE = 10.0


def turns_served(stack: Stack, conversation_id: str, since: int = 0) -> list[tuple[int, str]]:
    """Return (worker pid, replica url) for each turn of the conversation, as the chatroom's workers logged.

    since: where in the stack's log to start reading (a length of it read earlier).
    """
    return [
        (int(pid), replica)
        for pid, conversation, replica in TURN_SERVED.findall(stack.log_path.read_text()[since:])
        if conversation == conversation_id
    ]


def wait_for_turns(stack: Stack, conversation_id: str, count: int) -> list[tuple[int, str]]:
    """Return the conversation's logged turns once there are ``count`` (the log trails the answers)."""
    deadline = time.monotonic() + LOG_DEADLINE
    while len(served := turns_served(stack, conversation_id)) < count:
        assert time.monotonic() < deadline, f"{len(served)} of {count} turns logged"
        time.sleep(0.05)
    return served


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def chatroom_workers(stack: Stack) -> set[int]:
    """Return the pids of the chatroom's gunicorn workers (the children of its master)."""
    chatroom = {p.pid for p in stack.processes() if p.part.endswith("--module chatroom")}
    return {pid for pid in chatroom if parent_pid(pid) in chatroom}


def replica_urls(stack: Stack, host_id: str) -> set[str]:
    """Return the urls of the host's two replicas: its own, and 100 ports above it."""
    url = stack.hosts[host_id]
    base, port = url.rsplit(":", 1)
    return {url, f"{base}:{int(port) + 100}"}


def post_on_a_new_connection(person: Person, text: str) -> int:
    """Send one message as the person, on a connection of its own (any worker may accept it)."""
    with requests.Session() as http:
        http.cookies.update(person.http.cookies)
        return http.post(f"{person.chatroom_url}/api/messages", json={"text": text}, timeout=60).status_code


def test_one_conversation_spreads_over_workers_and_replicas_keeping_its_form_and_its_order(
    scaled_stack: Stack,
):
    stack = scaled_stack
    person = stack.person()
    person.start()
    conversation = person.conversation_id
    email = unique_email("sam")

    # The form's turns come over one kept-alive connection, so one worker takes them,
    # and it takes the bot's replicas in turn.
    fill_incident_form(person, email, opening="I want to open an incident", title="Black screen when docked")
    person.press("Yes")
    assert INCIDENT_NUMBER.search(" ".join(person.texts("bot"))), person.texts("bot")
    form_turns = wait_for_turns(stack, conversation, 6)
    assert {replica for _, replica in form_turns} == replica_urls(stack, "helpdesk"), form_turns
    tracker = stack.tracker("helpdesk", conversation)
    assert tracker["slots"]["previous_email"] == email
    assert not (tracker["active_loop"] or {}).get("name"), "the form finished on whichever replica served it"
    form_user_texts = len(stack.user_texts("helpdesk", conversation))

    # Twenty at once, each on its own connection: the workers take them as the kernel hands them out.
    assert post_all_at_once(lambda text: post_on_a_new_connection(person, text), MESSAGES) == [200] * 20
    received = stack.user_texts("helpdesk", conversation)[form_user_texts:]
    assert sorted(received) == sorted(MESSAGES), "none lost, none doubled"
    transcript = [m["text"] for m in person.start()["messages"] if m["role"] == "user"]
    assert transcript[-20:] == received, "the bot got them in the order the transcript shows"

    # Until both workers have served this conversation (almost always done by the twenty already).
    workers = chatroom_workers(stack)
    assert len(workers) == 2, workers
    sent = len(form_turns) + 20
    deadline = time.monotonic() + 60
    while {pid for pid, _ in wait_for_turns(stack, conversation, sent)} != workers:
        assert time.monotonic() < deadline, f"one worker did it all: {turns_served(stack, conversation)}"
        assert post_on_a_new_connection(person, "thanks") == 200
        sent += 1
    served = turns_served(stack, conversation)
    assert {replica for _, replica in served} == replica_urls(stack, "helpdesk")
    assert {pid for pid, _ in served} == workers
