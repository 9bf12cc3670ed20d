"""The cookie-signing key that workers starting together create and share."""
from __future__ import annotations

import multiprocessing
import secrets
import stat
import time

import chatroom
from chatroom import persistent_secret

WORKERS = 12
token_hex = secrets.token_hex


def start_worker(path, barrier, keys) -> None:
    barrier.wait()
    keys.put(persistent_secret(path))


def slow_token_hex(nbytes: int) -> str:
    # Widens the moment between a worker making the key and storing it, where others look.
    time.sleep(0.2)
    return token_hex(nbytes)


def test_workers_creating_the_key_at_once_all_get_the_same_whole_key(tmp_path, monkeypatch):
    monkeypatch.setattr(chatroom.secrets, "token_hex", slow_token_hex)
    path = tmp_path / "var" / "chatroom-secret"
    context = multiprocessing.get_context("fork")
    barrier, keys = context.Barrier(WORKERS), context.Queue()
    workers = [context.Process(target=start_worker, args=(path, barrier, keys)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    found = [keys.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(30)

    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    assert len(set(found)) == 1 and len(found[0]) == 64, found
    assert found[0] == path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["chatroom-secret"]


def test_a_stored_key_is_kept(tmp_path):
    path = tmp_path / "chatroom-secret"
    path.write_text("a" * 64 + "\n")
    assert persistent_secret(path) == "a" * 64
