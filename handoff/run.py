"""Start every local host in handoff_config.yml, its action server and the chatroom.

``python -m handoff.run`` (what ``make run`` calls). Hosts whose id has a folder
under bots/ are started here, and so is every ``kind: parlant`` host on this
machine (the human desk, ``python -m desk``); any other host is expected to be
running already. One prefixed log stream; if one process dies, everything stops.
"""
from __future__ import annotations

import argparse
import datetime
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import requests
from honcho.manager import Manager
from honcho.printer import Message

from handoff.config import (
    CONFIG_ENV,
    HOST_ID_ENV,
    REPO_ROOT,
    STATE_DIR_ENV,
    ConfigError,
    config_path,
    load_config,
    state_dir,
)

BOTS_DIR = REPO_ROOT / "bots"
RASA_BIN = Path(os.environ.get("RASA_BIN") or REPO_ROOT / ".venv-rasa" / "bin" / "rasa")
# An action server listens 50 ports above its bot (5005 -> 5055), so one url sets both.
ACTION_PORT_OFFSET = 50
READY_TIMEOUT = 300.0
LAUNCHER_NAME = "launcher"
OPERATORS_ENV = "CHATROOM_DESK_OPERATORS"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
DESK_TOKEN_ENV = "DESK_API_TOKEN"


@dataclass
class Part:
    """A process to start, and the url that answers once it is ready."""

    name: str
    command: str
    cwd: Path
    health_url: str
    env: Dict[str, str] = field(default_factory=dict)
    role: str = "bot"


def plan(config_file: Path, api_token: str, chatroom_port: int, desk_token: str = "") -> List[Part]:
    """Return the processes for every local bot, every local desk and the chatroom."""
    config = load_config(config_file)
    state = state_dir()
    common = {
        CONFIG_ENV: str(config_file.resolve()),
        STATE_DIR_ENV: str(state),
        # The desks accept only the chatroom's calls: both get this token.
        DESK_TOKEN_ENV: desk_token,
        "PYTHONUNBUFFERED": "1",
        # Quiet TensorFlow's and SQLAlchemy's start-up chatter so real warnings stand out.
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }
    parts = []
    for host in config.hosts:
        bot_dir = BOTS_DIR / host.id
        if host.kind != "rasa" or not bot_dir.is_dir():
            continue
        models = sorted((bot_dir / "models").glob("*.tar.gz"))
        if not models:
            raise ConfigError(f"{bot_dir}: no trained model in models/ (run `make train`)")
        action_port = host.port + ACTION_PORT_OFFSET
        env = {
            **common,
            HOST_ID_ENV: host.id,
            "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook",
            "RASA_TRACKER_DB": str(state / f"{host.id}-tracker.db"),
            # rasa-sdk binds 0.0.0.0 unless told otherwise.
            "SANIC_HOST": "127.0.0.1",
        }
        parts.append(Part(
            name=host.id,
            command=(
                f"exec {RASA_BIN} run --model models --endpoints endpoints.yml "
                f"--credentials credentials.yml --interface 127.0.0.1 --port {host.port} "
                f"--enable-api --auth-token {api_token}"
            ),
            cwd=bot_dir,
            health_url=f"http://127.0.0.1:{host.port}/status?token={api_token}",
            env=env,
        ))
        parts.append(Part(
            name=f"{host.id}.actions",
            command=f"exec {RASA_BIN} run actions --actions actions --port {action_port}",
            cwd=bot_dir,
            health_url=f"http://127.0.0.1:{action_port}/health",
            env=env,
            role="actions",
        ))
    for host in config.hosts:
        if host.kind != "parlant" or host.hostname not in LOCAL_NAMES:
            continue
        parts.append(Part(
            name=host.id,
            command=f"exec {sys.executable} -m desk --host-id {host.id}",
            cwd=REPO_ROOT,
            health_url=f"http://127.0.0.1:{host.port}/healthz",
            env={**common, HOST_ID_ENV: host.id},
            role="desk",
        ))
    parts.append(Part(
        name="chatroom",
        command=f"exec {sys.executable} -m chatroom --host 127.0.0.1 --port {chatroom_port}",
        cwd=REPO_ROOT,
        health_url=f"http://127.0.0.1:{chatroom_port}/healthz",
        env=common,
        role="chatroom",
    ))
    return parts


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def watch_readiness(manager: Manager, parts: List[Part], ready_lines: List[str], timeout: float) -> None:
    """Print the ready lines when every part answers, or name the ones that never did."""
    def say(text: str) -> None:
        manager.events.put(Message(
            type="line", data=f"{text}\n", time=datetime.datetime.now(),
            name=LAUNCHER_NAME, colour=None,
        ))

    waiting = {part.name: part.health_url for part in parts}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for name, url in list(waiting.items()):
            if answers(url):
                del waiting[name]
                say(f"{name} is up")
        time.sleep(0.5)
    if waiting:
        say(f"still not answering after {timeout:.0f}s: {', '.join(sorted(waiting))}")
    else:
        for line in ready_lines:
            say(line)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff.run", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=config_path(),
        help="handoff config file (default: handoff_config.yml; $HANDOFF_CONFIG)",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CHATROOM_PORT", "8080")),
        help="chatroom port (default 8080; $CHATROOM_PORT)",
    )
    parser.add_argument("--check", action="store_true", help="validate the config, print the plan, exit")
    args = parser.parse_args(argv)

    # Rasa's HTTP API is on loopback only, and still needs this token.
    api_token = os.environ.get("RASA_API_TOKEN") or secrets.token_urlsafe(24)
    desk_token = os.environ.get(DESK_TOKEN_ENV) or secrets.token_urlsafe(24)
    try:
        parts = plan(args.config, api_token, args.port, desk_token)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for part in parts:
            print(f"{part.name:<20} {part.health_url.split('?')[0]}")
        return 0

    ready_lines = [f"ready at http://localhost:{args.port}"]
    if any(part.role == "desk" for part in parts) and not os.environ.get(OPERATORS_ENV):
        # A desk nobody can log into is no use; make one operator for this run.
        password = secrets.token_urlsafe(9)
        os.environ[OPERATORS_ENV] = f"operator:{password}"
        ready_lines.append(
            f"operator console at http://localhost:{args.port}/desk "
            f"(name operator, password {password}; set {OPERATORS_ENV} to choose your own)"
        )

    state_dir().mkdir(parents=True, exist_ok=True)
    manager = Manager()
    for part in parts:
        manager.add_process(part.name, part.command, env={**os.environ, **part.env}, cwd=str(part.cwd))
    threading.Thread(
        target=watch_readiness,
        args=(manager, parts, ready_lines, READY_TIMEOUT),
        daemon=True,
    ).start()
    manager.loop()
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
