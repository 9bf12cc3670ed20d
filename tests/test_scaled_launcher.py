"""What the launcher restarts on the scaled stack, and what still stops the whole run.

A part the others can do without for a moment (our own PostgreSQL or Redis, one
of several replicas of a bot) is started again when it stops after it answered;
anything else stopping, or such a part failing again at once, stops everything.
The scaled stack's fault tests (test_scaled_faults) show it with the real parts.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from handoff.run import Options, plan, shared_stores, with_fork_server
from handoff.supervisor import RESTART_WINDOW, Part, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
SHARED = {"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/handoff", "REDIS_URL": "redis://:p@127.0.0.1:2/0"}


@contextmanager
def supervising(*parts: Part) -> Iterator[tuple[Supervisor, io.StringIO]]:
    out = io.StringIO()
    supervisor = Supervisor(out=out)
    supervisor.start(parts, dict(os.environ))
    try:
        assert supervisor.wait_until_up(parts)
        yield supervisor, out
    finally:
        supervisor.stop_all([[part.name for part in parts]])


def handle_until(supervisor: Supervisor, condition: Callable[[], bool], timeout: float = 30) -> None:
    """Let the supervisor handle its events (as its run loop does) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor._handle_next()


def restarted(supervisor: Supervisor, name: str, before) -> bool:
    return supervisor.processes[name] is not before and supervisor.units[name].up


def part(name: str, *, restart: bool) -> Part:
    return Part(name, SLEEPER, Path.cwd(), ready=lambda: True, restart=restart)


def test_a_part_marked_restart_that_stops_after_it_answered_is_started_again_and_the_rest_runs_on():
    with supervising(part("redis", restart=True), part("chatroom", restart=False)) as (supervisor, out):
        first, chatroom = supervisor.processes["redis"], supervisor.processes["chatroom"]
        first.terminate()
        handle_until(supervisor, lambda: restarted(supervisor, "redis", first))

        assert supervisor.failed is None and not supervisor.stopping
        assert supervisor.processes["redis"].poll() is None
        assert supervisor.processes["chatroom"] is chatroom and chatroom.poll() is None
        lines = out.getvalue().splitlines()
        assert lines[lines.index("redis stopped (exit code -15); starting it again") + 1] == "starting redis"


def test_a_part_that_stops_again_soon_after_its_restart_stops_the_run():
    with supervising(part("redis", restart=True), part("chatroom", restart=False)) as (supervisor, out):
        first = supervisor.processes["redis"]
        first.terminate()
        handle_until(supervisor, lambda: restarted(supervisor, "redis", first))
        supervisor.processes["redis"].terminate()
        handle_until(supervisor, lambda: supervisor.stopping)

        assert supervisor.failed == "redis stopped (exit code -15)"
        assert out.getvalue().splitlines()[-1] == "redis stopped (exit code -15); stopping everything"
    assert RESTART_WINDOW >= 30, "long enough to tell a part that keeps failing from one that failed once"


def test_a_part_not_marked_restart_stops_the_run():
    with supervising(part("chatroom", restart=False), part("redis", restart=True)) as (supervisor, out):
        supervisor.processes["chatroom"].terminate()
        handle_until(supervisor, lambda: supervisor.stopping)

        assert supervisor.failed == "chatroom stopped (exit code -15)"


def test_a_part_marked_restart_that_stops_before_it_answered_stops_the_run(tmp_path: Path):
    out = io.StringIO()
    supervisor = Supervisor(out=out)
    failing = Part(
        "redis", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path, ready=lambda: False, restart=True
    )
    supervisor.start([failing], dict(os.environ))
    assert not supervisor.wait_until_up([failing])
    supervisor.stop_all([["redis"]])
    assert supervisor.failed == "redis stopped (exit code 3)"


def test_replicas_of_a_bot_are_restarted_a_lone_bot_server_is_not(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path))
    (tmp_path / "run").mkdir()
    config = tmp_path / "handoff_config.yml"
    config.write_text(yaml.safe_dump({"handoff_hosts": {
        "helpdesk": {"title": "Helpdesk Assistant", "url": "http://localhost:5005", "replicas": 2},
        "financial": {"title": "Financial Assistant", "url": "http://localhost:5006", "replicas": 1},
    }}))
    parts = plan(config, "t", 8080, options=Options(shared=SHARED))
    assert {p.name: p.restart for p in parts} == {
        "helpdesk": True, "helpdesk-1": True, "helpdesk.actions": False,
        "financial": False, "financial.actions": False, "chatroom": False,
    }
    (fork_server,) = [p for p in with_fork_server(parts, tmp_path) if p.members]
    spec = json.loads(Path(fork_server.argv[-1]).read_text())
    assert {server["name"]: server["restart"] for server in spec} == {
        "helpdesk": True, "helpdesk-1": True, "financial": False,
    }
    assert fork_server.restart is False, "the fork server forks its replicas again itself"


def test_our_own_databases_are_restarted(tmp_path: Path, monkeypatch):
    for name in SHARED:
        monkeypatch.delenv(name, raising=False)
    if not Path("/usr/bin/redis-server").exists():
        pytest.skip("redis-server is not installed")
    ours = Part("postgresql", SLEEPER, tmp_path)
    monkeypatch.setattr("handoff.databases.postgresql", lambda state, port: (ours, ""))
    parts, _ = shared_stores(argparse.Namespace(scaled=True, check=False), tmp_path)
    assert {p.name: p.restart for p in parts} == {"postgresql": True, "redis": True}
