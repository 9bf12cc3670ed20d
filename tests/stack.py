"""Start and reach the real stack (bots, action servers, chatroom): shared by the tests and bench/."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests
import yaml
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from handoff.config import REPO_ROOT
from tests.fakehost import FakeHost

STACK_START_TIMEOUT = 420
API_TOKEN = "test-api-token"
LAUNCHER = [sys.executable, "-m", "handoff.run"]
# A bot's action server listens 50 above it; its second replica (scaled stack) 100 above.
BOT_PORT_OFFSETS = (50, 100)
# What the launcher gives the chatroom on the scaled stack, and another chatroom needs to join it.
SHARED_SETTINGS = ("DATABASE_URL", "REDIS_URL", "CHATROOM_WORKERS")


def free_port(*, also_free_at: int | tuple[int, ...] = 0) -> int:
    """Return a free loopback port; with also_free_at, one whose port + each offset is free too."""
    offsets = also_free_at if isinstance(also_free_at, tuple) else (also_free_at,)
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + max(offsets) > 65535:
            continue
        if all(not offset or port_is_free(port + offset) for offset in offsets):
            return port
    raise RuntimeError("no free port pair on 127.0.0.1")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Stack:
    """The running stack and what tests need to reach it."""

    config_path: Path
    state_dir: Path
    chatroom_url: str
    hosts: dict[str, str]
    scripted: FakeHost | None
    log_path: Path
    pid: int
    scaled: bool = False
    stop: Callable[[], None] = field(default=lambda: None, repr=False)

    def config(self) -> dict:
        return yaml.safe_load(self.config_path.read_text())

    def write_config(self, data: dict) -> None:
        # Write then rename, so a process never reads half a file.
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        tmp.replace(self.config_path)

    def tracker(self, host_id: str, conversation_id: str) -> dict:
        response = requests.get(
            f"{self.hosts[host_id]}/conversations/{conversation_id}/tracker",
            params={"token": API_TOKEN},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def user_texts(self, host_id: str, conversation_id: str) -> list[str]:
        events = self.tracker(host_id, conversation_id)["events"]
        return [event.get("text") for event in events if event["event"] == "user"]

    def person(self) -> Person:
        return Person(self.chatroom_url, self.state_dir)

    def log_shows(self, text: str, timeout: float = 10.0) -> bool:
        """Tell whether the stack's log holds ``text``, waiting up to ``timeout`` s for it.

        A part's lines reach the log through the launcher, a moment after the part wrote them.
        """
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def shared_settings(self) -> dict[str, str]:
        """Return the SHARED_SETTINGS the launcher gave the chatroom (none on the embedded stack)."""
        chatroom = next(p for p in self.processes() if p.part.endswith("--module chatroom"))
        return {name: chatroom.environ[name] for name in SHARED_SETTINGS if name in chatroom.environ}

    def processes(self) -> list[StackProcess]:
        """Return every process the launcher started (and theirs), read from /proc."""
        found = []
        for pid, part_pid in descendants(self.pid):
            process = StackProcess.read(pid)
            part = process if pid == part_pid else StackProcess.read(part_pid)
            if process is not None and part is not None:
                found.append(replace(process, part=part.command))
        return found


@dataclass(frozen=True)
class StackProcess:
    """One running process: its id, command line and environment (as /proc shows them)."""

    pid: int
    argv: list[str]
    environ: dict[str, str]
    # The command line of the part (the launcher's child) this process belongs to.
    part: str = ""

    @classmethod
    def read(cls, pid: int) -> StackProcess | None:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
            pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")[:-1]
        except OSError:
            return None
        return cls(pid, argv, dict(pair.split("=", 1) for pair in pairs if "=" in pair))

    @property
    def command(self) -> str:
        return " ".join(self.argv)


def descendants(pid: int) -> list[tuple[int, int]]:
    """Return (id, id of the child of ``pid`` it descends from) for every process below ``pid``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, waiting = [], [(child, child) for child in children.get(pid, [])]
    while waiting:
        found.append(waiting.pop())
        current, part = found[-1]
        waiting.extend((child, part) for child in children.get(current, []))
    return found


class Person:
    """Someone using the chatroom's API the way the page does."""

    def __init__(self, chatroom_url: str, state_dir: Path) -> None:
        self.chatroom_url = chatroom_url
        self.state_dir = state_dir
        self.http = requests.Session()
        self.last: dict = {}

    def _post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.http.post(f"{self.chatroom_url}{path}", json=body or {}, timeout=60)

    def start(self) -> dict:
        response = self._post("/api/conversation")
        response.raise_for_status()
        self.last = response.json()
        return self.last

    def say(self, text: str) -> dict:
        response = self._post("/api/messages", {"text": text})
        response.raise_for_status()
        self.last = response.json()
        return self.last

    def buttons(self) -> dict[str, str]:
        """Return the titles and ids of the buttons in the last reply."""
        return {
            button["title"]: button["id"]
            for message in self.last.get("messages", [])
            for button in message.get("buttons") or []
        }

    def press(self, title: str) -> dict:
        buttons = self.buttons()
        assert title in buttons, f"no button {title!r} in {self.texts()} {list(buttons)}"
        response = self._post("/api/messages", {"button": buttons[title]})
        response.raise_for_status()
        self.last = response.json()
        return self.last

    def texts(self, role: str | None = None, host: str | None = None) -> list[str]:
        """Return the texts of the last reply, optionally only one role's or one host's."""
        return [
            message.get("text", "")
            for message in self.last.get("messages", [])
            if (role is None or message["role"] == role) and (host is None or message["host"] == host)
        ]

    @property
    def host(self) -> str:
        return self.last["host"]["id"]

    @property
    def conversation_id(self) -> str:
        secret = (self.state_dir / "chatroom-secret").read_text().strip()
        app = Flask("cookie-reader")
        app.secret_key = secret
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        return serializer.loads(self.http.cookies["chatroom"])["conversation_id"]


def _pump(stream, log_file, ready: threading.Event) -> None:
    for line in iter(stream.readline, ""):
        log_file.write(line)
        log_file.flush()
        if "ready at http://" in line:
            ready.set()


def default_config(scripted_url: str | None = None) -> dict:
    """Return a config for the two bots on free ports, plus a scripted host and one that is down."""
    helpdesk_port = free_port(also_free_at=BOT_PORT_OFFSETS)
    financial_port = free_port(also_free_at=BOT_PORT_OFFSETS)
    hosts = {
        "helpdesk": {"title": "Helpdesk Assistant", "url": f"http://localhost:{helpdesk_port}"},
        "financial": {"title": "Financial Assistant", "url": f"http://localhost:{financial_port}"},
    }
    if scripted_url:
        hosts["scripted"] = {"title": "Scripted Desk", "url": scripted_url}
        hosts["offline"] = {"title": "Offline Desk", "url": f"http://127.0.0.1:{free_port()}"}
    return {"handoff_hosts": hosts, "entry": "helpdesk"}


@contextmanager
def running_stack(
    config: dict, root: Path, scripted: FakeHost | None = None, *,
    scaled: bool = False, launcher: list[str] | None = None,
) -> Iterator[Stack]:
    """Start ``python -m handoff.run`` with this config in ``root``; stop it on exit.

    scaled: the launcher's --scaled stack (its own PostgreSQL and Redis unless
    DATABASE_URL / REDIS_URL are set, two chatroom workers, two replicas of each
    bot). launcher: another command that ends up running it (bench: ``make run``).
    """
    config_path = root / "handoff_config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    state_dir = root / "state"
    if scaled and os.geteuid() == 0:
        # PostgreSQL runs as the postgres user, which must be able to enter the state folder;
        # pytest's temporary folders are private to root.
        state_dir = Path(tempfile.mkdtemp(prefix="handoff-scaled-state-"))
    chatroom_port = free_port()
    env = {
        **os.environ,
        "HANDOFF_CONFIG": str(config_path),
        "HANDOFF_STATE_DIR": str(state_dir),
        "RASA_API_TOKEN": API_TOKEN,
        "CHATROOM_PORT": str(chatroom_port),
        # Every simulated person shares 127.0.0.1, so the per-address limits would
        # throttle the suite and the load bench; their own tests use chatrooms of their own.
        "CHATROOM_RATE_PER_CLIENT": "0",
        "CHATROOM_NEW_CONVERSATIONS_PER_CLIENT": "0",
    }
    command = (launcher or LAUNCHER) + (["--scaled"] if scaled and launcher is None else [])
    chatroom_host = env.get("CHATROOM_HOST", "127.0.0.1")
    log_path = root / "stack.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=_pump, args=(process.stdout, log_file, ready), daemon=True).start()
        deadline = time.monotonic() + STACK_START_TIMEOUT
        try:
            while not ready.wait(1):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"stack did not start; log tail:\n{log_path.read_text()[-4000:]}")
            yield Stack(
                config_path=config_path,
                state_dir=state_dir,
                chatroom_url=f"http://{chatroom_host}:{chatroom_port}",
                hosts={host_id: host["url"] for host_id, host in config["handoff_hosts"].items()},
                scripted=scripted,
                log_path=log_path,
                pid=process.pid,
                scaled=scaled,
                stop=lambda: stop(process),
            )
        finally:
            stop(process)
            if state_dir.parent != root:
                shutil.rmtree(state_dir, ignore_errors=True)


def stop(process: subprocess.Popen) -> None:
    """Stop the launcher and everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
