"""Throwaway servers for the Rasa-side tests: a free loopback port, PostgreSQL's programs."""
import glob
import shutil
import socket
from pathlib import Path
from typing import Optional


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgresql_programs() -> Optional[Path]:
    """Return the folder of PostgreSQL's server programs, if installed."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True) + [
        str(Path(shutil.which("initdb") or "/nonexistent").parent)
    ]:
        if (Path(folder) / "pg_ctl").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    return None
