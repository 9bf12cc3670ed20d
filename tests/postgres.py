"""A throwaway PostgreSQL server on a free loopback port, for tests and benches (Debian's binaries)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.stack import free_port

MISSING = "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
START_TIMEOUT = 60


def server_binaries() -> Path | None:
    """Return the newest /usr/lib/postgresql/<version>/bin that has initdb and postgres, or None."""
    found = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/postgres")
        if (path.parent / "initdb").exists()
    ]
    return max(found, key=lambda path: int(path.parent.name), default=None) if found else None


def as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a fresh cluster in a temporary folder on 127.0.0.1; yield its postgresql:// URL.

    On exit the server stops and the folder goes. The folder is made outside
    pytest's (root-only) temporary tree so that the postgres user can enter it.
    """
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError(MISSING)
    root = Path(tempfile.mkdtemp(prefix="desk-postgres-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        with started(binaries, root) as url:
            yield url
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def started(binaries: Path, root: Path) -> Iterator[str]:
    data = root / "data"
    # The C locale sorts text by code point, as Parlant's own stores do in Python.
    initdb = subprocess.run(
        as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "--locale=C", "-E", "UTF8"]),
        check=False, capture_output=True, text=True,
    )
    if initdb.returncode != 0:
        raise RuntimeError(f"initdb failed in {root}: {initdb.stderr[-2000:]}")
    port = free_port()
    with (root / "postgres.log").open("w") as log:
        server = subprocess.Popen(
            as_owner([str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                      "-k", str(root), "-c", "fsync=off"]),
            stdout=subprocess.DEVNULL, stderr=log,
        )
    try:
        wait_until_ready(binaries, root, port, server)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()  # SIGTERM: smart shutdown; the clients are gone by now
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_ready(binaries: Path, root: Path, port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log = (root / "postgres.log").read_text()
            raise RuntimeError(f"postgres exited with {server.returncode}: {log[-2000:]}")
        ready = subprocess.run(
            [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"postgres did not accept connections on 127.0.0.1:{port} within {START_TIMEOUT}s")
