"""PostgreSQL and Redis of our own for ``make run-scaled``: data under the state folder, loopback only.

Debian's ``postgresql`` and ``redis-server`` packages provide the programs; no
system service or system cluster is used. PostgreSQL refuses to run as root, so
when the launcher is root the server runs as the ``postgres`` user the package
creates, with a data folder it owns. Each server has a password generated once
and kept in a 0600 file beside its data; the launcher hands the resulting
``DATABASE_URL`` / ``REDIS_URL`` to every other part through the environment.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
from pathlib import Path

from handoff.supervisor import Part

DATABASE_URL_ENV = "DATABASE_URL"
REDIS_URL_ENV = "REDIS_URL"
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_SYSTEM_USER = "postgres"
DATABASE = "handoff"
DATABASE_USER = "handoff"
INSTALL_HINT = "run `make run-scaled`, which installs Debian's postgresql and redis-server"


class DatabaseError(RuntimeError):
    """A database that cannot be set up; the message says what to do."""


def postgres_bindir() -> Path:
    """Return the newest installed PostgreSQL's bin folder."""
    found = sorted(
        (Path(p) for p in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")) if (Path(p) / "postgres").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if not found:
        raise DatabaseError(f"PostgreSQL is not installed ({POSTGRES_BIN_GLOB}/postgres); {INSTALL_HINT}")
    return found[-1]


def postgres_user() -> str | None:
    """Return the system user PostgreSQL must run as: ``postgres`` when we are root, else None (us)."""
    return POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None


def secret_file(path: Path) -> str:
    """Return the secret kept in ``path``, making one (0600) the first time."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def reachable_by(path: Path, user: str) -> None:
    """Raise DatabaseError unless ``user`` may enter every folder above ``path``."""
    account = pwd.getpwnam(user)
    groups = {account.pw_gid} | {g for g in os.getgrouplist(user, account.pw_gid)}
    for folder in path.resolve().parents:
        info = folder.stat()
        if info.st_mode & stat.S_IXOTH or (info.st_gid in groups and info.st_mode & stat.S_IXGRP):
            continue
        if info.st_uid == account.pw_uid and info.st_mode & stat.S_IXUSR:
            continue
        raise DatabaseError(
            f"PostgreSQL runs as the {user} user, which cannot enter {folder} "
            f"(mode {stat.S_IMODE(info.st_mode):o}); set HANDOFF_STATE_DIR to a folder it can reach, "
            "or point DATABASE_URL at a PostgreSQL of your own"
        )


def open_to_postgres(state: Path, user: str) -> None:
    """Let the postgres user through the state folder (group only: 0710) to its own data folder."""
    reachable_by(state, user)
    os.chown(state, -1, pwd.getpwnam(user).pw_gid)
    state.chmod(0o710)


def postgresql(state: Path, port: int) -> tuple[Part, str]:
    """Return the part that runs our PostgreSQL on 127.0.0.1:``port``, and its DATABASE_URL.

    Creates the cluster in ``state/postgres/data`` the first time.
    """
    bindir = postgres_bindir()
    user = postgres_user()
    password = secret_file(state / "postgres-password")
    home = state / "postgres"
    data = home / "data"
    if user is not None:
        open_to_postgres(state, user)
    if not (data / "PG_VERSION").exists():
        create_cluster(bindir, home, data, user, password)
    running = _running_pid(data)
    if running:
        raise DatabaseError(
            f"a PostgreSQL from an earlier run still uses {data} (pid {running}); stop it with "
            f"`kill -INT {running}` and start again"
        )
    url = f"postgresql://{DATABASE_USER}:{password}@127.0.0.1:{port}/{DATABASE}"
    part = Part(
        name="postgresql",
        argv=[
            str(bindir / "postgres"), "-D", str(data),
            "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
            # no Unix socket: every client comes over loopback TCP with the password
            "-c", "unix_socket_directories=",
        ],
        cwd=home,
        env={"LC_ALL": "C"},
        role="database",
        user=user,
        # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to leave.
        stop_signal=signal.SIGINT,
        ready=lambda: _pg_isready(bindir, port),
        after_ready=lambda: create_database(bindir, port, password),
    )
    return part, url


def create_cluster(bindir: Path, home: Path, data: Path, user: str | None, password: str) -> None:
    """Run initdb (as ``user``) for a cluster whose only role is ``handoff``, with a password."""
    print(f"creating a PostgreSQL cluster in {data}", flush=True)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = pwd.getpwnam(user) if user else None
    if owner is not None:
        os.chown(home, owner.pw_uid, owner.pw_gid)
    # initdb reads the password from a file the cluster's owner can read; it goes right after.
    password_file = home / "initdb-password"
    password_file.touch(mode=0o600)
    password_file.write_text(password + "\n")
    if owner is not None:
        os.chown(password_file, owner.pw_uid, owner.pw_gid)
    try:
        result = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", DATABASE_USER, "-E", "UTF8", "--no-locale",
             "--auth-host=scram-sha-256", "--auth-local=peer", f"--pwfile={password_file}"],
            cwd=home, user=user, group=owner.pw_gid if owner else None, extra_groups=[] if owner else None,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
            capture_output=True, text=True, check=False,
        )
    finally:
        password_file.unlink()
    if result.returncode != 0:
        raise DatabaseError(f"initdb failed for {data}:\n{result.stdout}{result.stderr}")


def _running_pid(data: Path) -> int | None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _pg_isready(bindir: Path, port: int) -> bool:
    result = subprocess.run(
        [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False,
    )
    return result.returncode == 0


def create_database(bindir: Path, port: int, password: str) -> None:
    """Create the ``handoff`` database unless it exists."""
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    where = ["-h", "127.0.0.1", "-p", str(port), "-U", DATABASE_USER]
    exists = subprocess.run(
        [str(bindir / "psql"), *where, "-d", "postgres", "-tAc",
         f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run([str(bindir / "createdb"), *where, DATABASE], env=env, capture_output=True, check=True)


def redis(state: Path, port: int) -> tuple[Part, str]:
    """Return the part that runs our Redis on 127.0.0.1:``port`` (data in state/redis), and its REDIS_URL."""
    server = shutil.which("redis-server")
    if server is None:
        raise DatabaseError(f"redis-server is not installed; {INSTALL_HINT}")
    password = secret_file(state / "redis-password")
    home = state / "redis"
    home.mkdir(mode=0o700, exist_ok=True)
    config = home / "redis.conf"
    # The password goes in a 0600 file: on the command line every user would see it.
    config.touch(mode=0o600)
    config.write_text(
        f"bind 127.0.0.1\nport {port}\nprotected-mode yes\nrequirepass {password}\n"
        f"dir {home}\ndaemonize no\nlogfile \"\"\nappendonly no\n"
    )
    part = Part(
        name="redis",
        argv=[server, str(config)],
        cwd=home,
        role="database",
        ready=lambda: redis_answers(port, password),
    )
    return part, f"redis://:{password}@127.0.0.1:{port}/0"


def redis_answers(port: int, password: str, host: str = "127.0.0.1") -> bool:
    """Tell whether Redis at host:port takes the password and answers PING."""
    request = (
        f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n".encode()
    )
    try:
        with socket.create_connection((host, port), timeout=2) as connection:
            connection.sendall(request)
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = connection.recv(256)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return False
    return answer == b"+OK\r\n+PONG\r\n"
