"""Faults on the scaled stack in the middle of conversations: a part dies or restarts, and no word is lost.

A few people write to the Helpdesk bot as fast as it answers while the test
kills or restarts one part. Each message either was delivered (the chatroom
answered it with the bot's reply) or the person was told to try again: an error
status, an "is not answering" notice, or no answer at all because the worker
holding the request died. They then send the same text again after the pause
the chatroom asks for (Retry-After), as the page keeps the draft. Afterwards
every delivered message is in the bot's tracker and in the transcript, in
order; nobody was told to try again more than once; and every other process
still runs as the same process.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from handoff import databases
from tests.stack import API_TOKEN, Person, Stack
from tests.test_handoff_stack import hand_over
from tests.test_scaled import chatroom_workers, parent_pid, turns_served

pytestmark = pytest.mark.stack

PEOPLE = 3
# Delivered messages each person has before the fault, and after everything answers again.
BEFORE, AFTER = 2, 3
# What the chatroom asks for in Retry-After, and how long a person waits after a notice saying "in a moment".
RETRY_PAUSE = 2.0
DEADLINE = 180.0
HELD = "wait for the test"
LISTEN, ESTABLISHED = "0A", "01"


def wait_until(
    condition: Callable[[], object], what: str | Callable[[], str], timeout: float = DEADLINE
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not in {timeout:.0f} s: {what() if callable(what) else what}"
        time.sleep(0.1)


@dataclass
class Chatter:
    """Someone writing to the bot as fast as it answers, and sending again what did not get through."""

    person: Person
    name: str
    delivered: list[str] = field(default_factory=list)
    # Each text sent, and how many times.
    attempts: dict[str, int] = field(default_factory=dict)
    # What the person was told instead of an answer, each time.
    told_to_retry: list[str] = field(default_factory=list)
    # What broke the test's own loop, if anything did.
    error: BaseException | None = None

    def send(self, text: str) -> tuple[str | None, float]:
        """Send one message; return what the person was told instead of an answer (None if delivered).

        Also return the pause the chatroom asked for before sending again.
        """
        self.attempts[text] = self.attempts.get(text, 0) + 1
        try:
            response = self.person.http.post(
                f"{self.person.chatroom_url}/api/messages", json={"text": text}, timeout=30
            )
        except requests.RequestException as exc:
            return f"no answer ({type(exc).__name__})", RETRY_PAUSE
        if response.status_code != 200:
            retry_after = float(response.headers.get("Retry-After", RETRY_PAUSE))
            return f"HTTP {response.status_code}: {response.text.strip()}", retry_after
        messages = response.json()["messages"]
        notices = [message["text"] for message in messages if message["role"] == "notice"]
        if notices or not any(message["role"] == "bot" for message in messages):
            return f"notices {notices}", RETRY_PAUSE
        return None, 0.0

    def talk(self, until: threading.Event) -> None:
        try:
            self._talk(until)
        except BaseException as exc:
            self.error = exc

    def _talk(self, until: threading.Event) -> None:
        number = 0
        while not until.is_set():
            text = f"hello from {self.name}, message {number}"
            told, pause = self.send(text)
            if told is None:
                self.delivered.append(text)
                number += 1
                continue
            self.told_to_retry.append(f"{text!r}: {told}")
            # The person's pause before sending it again, as the chatroom asked: not a wait for the test.
            until.wait(pause)


@contextmanager
def people_talking(stack: Stack) -> Iterator[list[Chatter]]:
    """Have PEOPLE people talk to the Helpdesk bot until the block ends; yield once each is under way."""
    chatters = [Chatter(stack.person(), f"person {number}") for number in range(PEOPLE)]
    for chatter in chatters:
        chatter.person.start()
    until = threading.Event()
    threads = [threading.Thread(target=chatter.talk, args=(until,)) for chatter in chatters]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: all(len(c.delivered) >= BEFORE or c.error for c in chatters), "all under way")
        yield chatters
    finally:
        until.set()
        for thread in threads:
            thread.join(60)
    for chatter in chatters:
        if chatter.error is not None:
            raise chatter.error


def wait_for_more(chatters: list[Chatter], count: int = AFTER) -> None:
    """Wait until each person has had ``count`` more messages delivered than now."""
    now = {chatter.name: len(chatter.delivered) for chatter in chatters}
    wait_until(
        lambda: all(len(c.delivered) >= now[c.name] + count or c.error for c in chatters),
        lambda: f"{count} more answers each: {[(c.name, c.told_to_retry, c.error) for c in chatters]}",
    )


def is_subsequence(items: list[str], within: list[str]) -> bool:
    rest = iter(within)
    return all(item in rest for item in items)


def assert_nothing_told_was_lost(stack: Stack, chatters: list[Chatter]) -> None:
    """Every delivered message reached the bot and the transcript in order; one message each at most refused.

    A person sends a refused message again after the pause the chatroom asked
    for, so one message may be refused more than once while the outage lasts;
    once one got through, none after it may be refused.
    """
    for chatter in chatters:
        refused = {text for text in chatter.attempts
                   if any(told.startswith(f"{text!r}: ") for told in chatter.told_to_retry)}
        assert len(refused) <= 1, (chatter.name, chatter.told_to_retry)
        for told in chatter.told_to_retry:
            # Said so, or the page's own request failed (the worker holding it died).
            assert "try again" in told or "no answer" in told, told
        conversation = chatter.person.conversation_id
        received = stack.user_texts("helpdesk", conversation)
        assert is_subsequence(chatter.delivered, received), (chatter.name, chatter.delivered, received)
        # Only a message sent twice (the first time cut off in the fault) may have reached the bot twice.
        for text in set(received):
            assert received.count(text) <= chatter.attempts.get(text, 0), (chatter.name, text, received)
        transcript = [m["text"] for m in chatter.person.start()["messages"] if m["role"] == "user"]
        assert is_subsequence(chatter.delivered, transcript), (chatter.name, chatter.delivered, transcript)


def long_lived(stack: Stack) -> set[int]:
    """Return the stack's lasting processes: each part and each process a part started (databases' aside)."""
    found = set()
    for process in stack.processes():
        try:
            parent = parent_pid(process.pid)
            if parent == stack.pid or parent_pid(parent) == stack.pid and not is_database(parent):
                found.add(process.pid)
        except OSError:
            continue  # ended meanwhile: not lasting
    return found


def program(pid: int) -> str:
    """Return the name of the program a process runs, from its title (Redis adds its address to it)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[0]
    except OSError:
        return ""  # ended meanwhile
    return Path(title.split(" ")[0]).name


def is_database(pid: int) -> bool:
    return program(pid) in ("postgres", "redis-server")


def assert_only_replaced(before: set[int], after: set[int], victim: int) -> None:
    """The process hit is gone and one new process took its place; every other is the same as before."""
    assert before - after == {victim}, f"stopped: {before - after}, expected only {victim}"
    assert len(after - before) == 1, f"new: {after - before}"


def socket_inodes(port: int, state: str) -> set[str]:
    """Return the inodes of TCP sockets listening on ``port`` (LISTEN) or connected to it (ESTABLISHED)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, socket_state, inode = fields[1], fields[2], fields[3], fields[9]
            address = local if state == LISTEN else remote
            if socket_state == state and int(address.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def socket_owner(stack: Stack, port: int, state: str) -> int:
    """Return the stack's process holding the socket listening on, or connected to, ``port``."""
    wanted = {f"socket:[{inode}]" for inode in socket_inodes(port, state)}
    owners = set()
    for process in stack.processes():
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{process.pid}/fd").iterdir()}
        except OSError:
            continue
        if links & wanted:
            owners.add(process.pid)
    assert len(owners) == 1, f"port {port}: {owners}"
    return owners.pop()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_chatroom_worker_killed_mid_turn_is_replaced_and_costs_each_person_one_message_sent_again_at_most(
    scaled_stack: Stack, monkeypatch
):
    stack = scaled_stack
    scripted = stack.scripted
    arrived, released = threading.Event(), threading.Event()
    answer_normally = scripted.reply

    def hold(sender: str, message: str):
        # The held message stays in its worker until the test lets it go.
        if message == HELD and not released.is_set():
            arrived.set()
            released.wait(60)
        return answer_normally(sender, message)

    monkeypatch.setattr(scripted, "reply", hold)
    held = Chatter(stack.person(), "held")
    held.person.start()
    held.person.say("hi")
    hand_over(held.person, "Scripted Desk")
    before = long_lived(stack)
    workers = chatroom_workers(stack)

    with people_talking(stack) as chatters:
        first_try: list[tuple[str | None, float]] = []
        sending = threading.Thread(target=lambda: first_try.append(held.send(HELD)))
        sending.start()
        assert arrived.wait(30), "the held message reached the scripted host"
        victim = socket_owner(stack, port_of(scripted.url), ESTABLISHED)
        assert victim in workers
        os.kill(victim, signal.SIGKILL)
        released.set()
        sending.join(60)
        [(told, _)] = first_try
        assert told is not None and told.startswith("no answer"), told
        # Sent again at once: the dead worker's hold on the conversation must not outlast it.
        assert held.send(HELD) == (None, 0.0)
        wait_until(lambda: len(chatroom_workers(stack)) == 2, "gunicorn has two workers again")
        wait_for_more(chatters)

    assert scripted.messages_from(held.person.conversation_id)[-2:] == [HELD, HELD]
    assert_nothing_told_was_lost(stack, chatters)
    assert chatroom_workers(stack) - workers and victim not in chatroom_workers(stack)
    assert_only_replaced(before, long_lived(stack), victim)


def replica_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/status", params={"token": API_TOKEN}, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_a_bot_replica_killed_mid_conversation_leaves_the_other_serving_and_comes_back(scaled_stack: Stack):
    stack = scaled_stack
    base, port = stack.hosts["helpdesk"].rsplit(":", 1)
    replica = f"{base}:{int(port) + 100}"
    before = long_lived(stack)

    with people_talking(stack) as chatters:
        victim = socket_owner(stack, port_of(replica), LISTEN)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not replica_answers(replica), "the replica is gone")
        wait_for_more(chatters)
        wait_until(lambda: replica_answers(replica), "the launcher started the replica again")
        back_at = len(stack.log_path.read_text())
        wait_for_more(chatters)

    assert_nothing_told_was_lost(stack, chatters)
    # Back in the round: it served turns again once it answered.
    later = {
        url for chatter in chatters for _, url in turns_served(stack, chatter.person.conversation_id, back_at)
    }
    assert replica in later
    restarted = rf"helpdesk-1 +\| stopped \(exit code -{int(signal.SIGKILL)}\); starting it again"
    assert re.search(restarted, stack.log_path.read_text())
    assert_only_replaced(before, long_lived(stack), victim)


def database_process(stack: Stack, name: str) -> int:
    """Return the pid of the stack's database server (the part itself, not its children)."""
    (pid,) = [p for p in long_lived(stack) if parent_pid(p) == stack.pid and program(p) == name]
    return pid


def restart_database(stack: Stack, name: str, stop_signal: int, answers: Callable[[], bool]) -> int:
    """Stop the database as one does to restart it; once the launcher started it again, return its old pid."""
    victim = database_process(stack, name)
    os.kill(victim, stop_signal)
    wait_until(lambda: not Path(f"/proc/{victim}").exists() or is_zombie(victim), f"{name} stopped")
    wait_until(lambda: answers() and database_process(stack, name) != victim, f"{name} is back")
    return victim


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_redis_restart_mid_conversation_loses_nothing(scaled_stack: Stack):
    stack = scaled_stack
    redis_conf = (stack.state_dir / "redis" / "redis.conf").read_text()
    redis_port = int(re.search(r"^port (\d+)$", redis_conf, re.M)[1])
    password = (stack.state_dir / "redis-password").read_text().strip()
    before = long_lived(stack)

    with people_talking(stack) as chatters:
        victim = restart_database(
            stack, "redis-server", signal.SIGTERM, lambda: databases.redis_answers(redis_port, password)
        )
        wait_for_more(chatters)

    assert_nothing_told_was_lost(stack, chatters)
    assert_only_replaced(before, long_lived(stack), victim)


def postgresql_answers(port: int) -> bool:
    ready = databases.postgres_bindir() / "pg_isready"
    return subprocess.run([str(ready), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False).returncode == 0


def test_a_postgresql_restart_mid_conversation_loses_nothing(scaled_stack: Stack):
    stack = scaled_stack
    postgres = database_process(stack, "postgres")
    argv = Path(f"/proc/{postgres}/cmdline").read_bytes().decode().split("\0")
    port = int(next(arg for arg in argv if arg.startswith("port=")).split("=")[1])
    before = long_lived(stack)

    with people_talking(stack) as chatters:
        # SIGINT: PostgreSQL's fast shutdown, what `pg_ctl restart -m fast` sends.
        victim = restart_database(stack, "postgres", signal.SIGINT, lambda: postgresql_answers(port))
        wait_for_more(chatters)

    assert_nothing_told_was_lost(stack, chatters)
    assert_only_replaced(before, long_lived(stack), victim)
