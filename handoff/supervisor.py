"""Run the launcher's parts as child processes: one prefixed output stream, and all stop together.

What honcho does for a Procfile, plus what the launcher needs on top: parts
start in stages (the databases before what uses them), a part's start-up
chatter stays in the run log until it answers (and is shown if it fails), a
part may run as another system user (PostgreSQL refuses root), one process may
serve several parts (the Rasa fork server, whose output lines carry the name of
the part that wrote them), every child gets a parent-death signal
(util-linux ``setpriv``) so none outlives a launcher that was killed, and a
part others can do without for a moment (a database they reconnect to, one of a
bot's replicas) is started again when it stops after it answered.
"""
from __future__ import annotations

import collections
import os
import queue
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

# A part may take this long from its start to answering (first starts compile bytecode).
READY_TIMEOUT = 300.0
POLL_SECONDS = 0.2
STOP_WAIT_SECONDS = 10.0
TAIL_LINES = 40
# A part started again that stops again this soon stops the run: it is failing, not flaky.
RESTART_WINDOW = 60.0
# A process serving several parts starts each of its lines with the part's name and this.
NAME_SEPARATOR = "\x1f"


@dataclass
class Part:
    """A process to start, and how to tell it is ready."""

    name: str
    argv: list[str]
    cwd: Path
    health_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    role: str = "bot"
    # Run as this system user (the launcher must be root); None: as the launcher's user.
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    ready: Callable[[], bool] | None = None
    # Runs once the part answers, before it counts as up (e.g. create a database).
    after_ready: Callable[[], None] | None = None
    # Parts this process serves instead of being one itself (their argv is not run).
    members: list[Part] = field(default_factory=list)
    # Start it again when it stops after it answered, instead of stopping the run (once a RESTART_WINDOW).
    restart: bool = False

    @property
    def command(self) -> str:
        """Return the part as one shell command line (``exec`` so the shell gives way to it)."""
        return "exec " + shlex.join(self.argv)

    def is_ready(self) -> bool:
        if self.ready is not None:
            return self.ready()
        return answers(self.health_url)


def answers(url: str) -> bool:
    """Tell whether ``url`` answers 200 right now."""
    # A refused connection costs microseconds, an HTTP request a millisecond: while a part
    # imports, knocking is enough, and its CPU goes to the parts still starting.
    where = urlsplit(url)
    try:
        with socket.create_connection((where.hostname, where.port or 80), timeout=2):
            pass
        return requests.get(url, timeout=2).status_code == 200
    except (OSError, requests.RequestException):
        return False


def _with_parent_death_signal(argv: list[str], signum: int) -> list[str]:
    """Return ``argv`` started through setpriv, so the process gets ``signum`` if we die first."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return argv
    return [setpriv, f"--pdeathsig={signal.Signals(signum).name[3:]}", "--", *argv]


@dataclass
class _Unit:
    """What a person sees as one part: its name, whether it answers, what it said last."""

    part: Part
    started: float
    up: bool = False
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))


class Supervisor:
    """Start parts, print their output with a name prefix, and stop all of them together."""

    def __init__(self, out: IO[str] = sys.stdout, log: IO[str] | None = None, verbose: bool = False):
        self.out = out
        self.log = log
        self.verbose = verbose
        self.events: queue.Queue = queue.Queue()
        self.units: dict[str, _Unit] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.parts: dict[str, Part] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.restarted: dict[str, float] = {}
        self.width = 8
        self.stopping = False
        self.failed: str | None = None

    # ---- output
    def say(self, text: str) -> None:
        """Print one of the launcher's own progress lines."""
        print(text, file=self.out, flush=True)
        self._log("launcher", text)

    def _log(self, name: str, line: str) -> None:
        if self.log is not None:
            self.log.write(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {line}\n")
            self.log.flush()

    def _line(self, process_name: str, line: str) -> None:
        name, separator, text = line.partition(NAME_SEPARATOR)
        if not separator or name not in self.units:
            name, text = process_name, line
        unit = self.units[name]
        unit.tail.append(text)
        self._log(name, text)
        if unit.up or self.verbose:
            print(f"{name:<{self.width}} | {text}", file=self.out, flush=True)

    # ---- processes
    def start(self, parts: Iterable[Part], base_env: dict[str, str]) -> None:
        """Start these parts now (from the main thread: the parent-death signal is tied to it)."""
        for part in parts:
            now = time.monotonic()
            for unit in part.members or [part]:
                self.width = max(self.width, len(unit.name))
                self.units[unit.name] = _Unit(unit, now)
                self.say(f"starting {unit.name}")
            if part.members:
                # The serving process itself answers nothing; its members do.
                self.units[part.name] = _Unit(part, now, up=True)
            process = subprocess.Popen(
                _with_parent_death_signal(part.argv, part.stop_signal), cwd=part.cwd,
                env={**base_env, **part.env},
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, user=part.user, group=_group_of(part.user),
                extra_groups=[] if part.user else None,
            )
            self.processes[part.name] = process
            self.parts[part.name] = part
            self.envs[part.name] = base_env
            threading.Thread(target=self._pump, args=(part.name, process), daemon=True).start()
            for unit in part.members or [part]:
                threading.Thread(target=self._watch_ready, args=(unit, process), daemon=True).start()

    def _pump(self, name: str, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            self.events.put(("line", name, raw.decode("utf-8", "replace").rstrip("\n")))
        process.stdout.close()
        self.events.put(("exit", name, process.wait()))

    def _watch_ready(self, part: Part, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.stopping and process.poll() is None and time.monotonic() < deadline:
            if part.is_ready():
                try:
                    if part.after_ready is not None:
                        part.after_ready()
                except Exception as exc:  # reported, and the run stops
                    self.events.put(("broken", part.name, str(exc)))
                    return
                self.events.put(("up", part.name, None))
                return
            time.sleep(POLL_SECONDS)
        if not self.stopping and process.poll() is None:
            self.events.put(("broken", part.name, f"not answering after {READY_TIMEOUT:.0f} s"))

    # ---- the loop
    def wait_until_up(self, parts: Iterable[Part]) -> bool:
        """Handle events until these parts answer; False if the run must stop instead."""
        wanted = [unit.name for part in parts for unit in part.members or [part]]
        while not self.stopping and not all(self.units[name].up for name in wanted):
            self._handle_next()
        return not self.stopping

    def run(self) -> None:
        """Handle events until a part stops, something fails or a signal arrives."""
        while not self.stopping:
            self._handle_next()

    def _handle_next(self) -> None:
        try:
            kind, name, data = self.events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        if kind == "line":
            self._line(name, data)
        elif kind == "up":
            unit = self.units[name]
            unit.up = True
            self.say(f"{name} is up ({time.monotonic() - unit.started:.1f} s)")
        elif kind == "exit" and not self.stopping:
            if self._may_restart(name):
                self.say(f"{name} stopped (exit code {data}); starting it again")
                self.restarted[name] = time.monotonic()
                self.start([self.parts[name]], self.envs[name])
            else:
                self._fail(name, f"{name} stopped (exit code {data})")
        elif kind == "broken":
            self._fail(name, f"{name} failed: {data}")

    def _may_restart(self, name: str) -> bool:
        """Tell whether a part that stopped may start again: it answered, and was not just restarted."""
        part, unit = self.parts[name], self.units[name]
        recently = name in self.restarted and time.monotonic() - self.restarted[name] < RESTART_WINDOW
        return part.restart and unit.up and not recently

    def _fail(self, name: str, message: str) -> None:
        if not self.verbose:
            # Show what the silent parts said before it went wrong.
            part = self.parts.get(name) or self.units[name].part
            for unit_name in [member.name for member in part.members] + [name]:
                unit = self.units.get(unit_name)
                if unit is None or unit.up:
                    continue
                for line in unit.tail:
                    print(f"{unit_name:<{self.width}} | {line}", file=self.out, flush=True)
        self.say(f"{message}; stopping everything")
        self.failed = message
        self.stopping = True

    def request_stop(self, signum: int, frame: Any = None) -> None:
        """Signal handler: stop everything (Ctrl-C, SIGTERM)."""
        self.stopping = True

    def stop_all(self, stages: list[list[str]]) -> None:
        """Stop every process, stage by stage; kill what does not stop in time."""
        self.stopping = True
        for names in stages:
            alive = [name for name in names if name in self.processes and self._alive(name)]
            for name in alive:
                _signal_group(self.processes[name], self.parts[name].stop_signal)
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            while any(self._alive(name) for name in alive) and time.monotonic() < deadline:
                self._drain()
            for name in alive:
                if self._alive(name):
                    self.say(f"{name} did not stop in {STOP_WAIT_SECONDS:.0f} s; killing it")
                    _signal_group(self.processes[name], signal.SIGKILL)
                    self.processes[name].wait()
        self._drain(until_empty=True)

    def _alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def _drain(self, until_empty: bool = False) -> None:
        """Print what the parts said while stopping: one event, or every queued one."""
        while True:
            try:
                kind, name, data = self.events.get(timeout=0 if until_empty else POLL_SECONDS)
            except queue.Empty:
                return
            if kind == "line":
                self._line(name, data)
            if not until_empty:
                return


def _group_of(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
