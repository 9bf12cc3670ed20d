"""Tests run by the Rasa environment (Python 3.10), where rasa-sdk lives."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List

import psycopg2
import pytest

from tests.rasa_side.servers import free_port, postgresql_programs

# handoff.actions checks its config when imported, as an action server does at start.
os.environ.setdefault("HANDOFF_CONFIG", str(Path(__file__).resolve().parents[2] / "handoff_config.yml"))
os.environ.setdefault("HANDOFF_HOST_ID", "helpdesk")


@pytest.fixture(scope="module")
def postgresql() -> Iterator[str]:
    """Start a throw-away PostgreSQL on a free loopback port; yield the URL of its database."""
    programs = postgresql_programs()
    if programs is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="handoff-pg-"))
    as_owner: List[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    try:
        subprocess.run([*as_owner, str(programs / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*as_owner, str(programs / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                        "-l", str(folder / "log"), "start"], check=True, capture_output=True)
        try:
            db = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            db.autocommit = True
            db.cursor().execute("CREATE DATABASE handoff")
            db.close()
            yield f"postgresql://postgres@127.0.0.1:{port}/handoff"
        finally:
            subprocess.run([*as_owner, str(programs / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           check=True, capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
