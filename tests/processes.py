"""Run the chatroom as its own process (gunicorn, gevent), in front of hosts a test chooses."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from handoff.config import REPO_ROOT
from tests.stack import free_port


@dataclass
class Chatroom:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def start_chatroom(
    config: dict, root: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str, Path]:
    """Start ``python -m chatroom`` with this handoff config in ``root``; return (process, url, log)."""
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "handoff_config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log_path = root / "chatroom.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "chatroom", "--port", str(port)], cwd=REPO_ROOT,
        env={
            **os.environ, "HANDOFF_CONFIG": str(config_path), "HANDOFF_STATE_DIR": str(root / "state"),
            # Every simulated person shares 127.0.0.1: per-address limits would throttle the tests.
            "CHATROOM_RATE_PER_CLIENT": "0", "CHATROOM_NEW_CONVERSATIONS_PER_CLIENT": "0", **(env or {}),
        },
        stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}", log_path


def wait_until_answering(process: subprocess.Popen, url: str, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the chatroom exited:\n{log_path.read_text()[-3000:]}"
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the chatroom did not answer in time:\n{log_path.read_text()[-3000:]}")


@contextmanager
def running_chatroom(config: dict, root: Path, env: dict[str, str] | None = None) -> Iterator[Chatroom]:
    """Run the chatroom until the block ends, then stop it."""
    process, url, log_path = start_chatroom(config, root, env)
    try:
        wait_until_answering(process, url, log_path)
        yield Chatroom(url, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
