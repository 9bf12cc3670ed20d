"""Start every local host in handoff_config.yml, its action server, the desk and the chatroom.

``python -m handoff.run`` (what ``make run`` calls). Hosts whose id has a folder
under bots/ are started here (each replica of each, and one action server per
bot), and so is every ``kind: parlant`` host on this machine (the human desk,
``python -m desk``); any other host is expected to be running already. With
``--scaled`` (``make run-scaled``) PostgreSQL and Redis of our own start first
unless DATABASE_URL / REDIS_URL name existing ones, with two chatroom workers and
two replicas of each bot. Each part's start-up output goes to the run log until
it answers. If any process stops, everything stops, but for a part the others
can do without for a moment: our own PostgreSQL or Redis (every part reconnects)
and one of several replicas of a bot (the others serve meanwhile) are started again.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from handoff import databases
from handoff.config import (
    BOTS_DIR,
    CONFIG_ENV,
    HOST_ID_ENV,
    REPLICAS_ENV,
    REPO_ROOT,
    STATE_DIR_ENV,
    ConfigError,
    HandoffConfig,
    config_path,
    load_config,
    state_dir,
)
from handoff.rasa_entry import ACTION_URL_ENV, TELEMETRY_ENV, TOKEN_ENV, components_for, needs_tensorflow
from handoff.supervisor import Part, Supervisor

RASA_PYTHON = Path(os.environ.get("RASA_PYTHON") or REPO_ROOT / ".venv-rasa" / "bin" / "python")
# An action server listens 50 ports above its bot (5005 -> 5055), so one url sets both.
ACTION_PORT_OFFSET = 50
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
DESK_TOKEN_ENV = "DESK_API_TOKEN"
OPERATORS_ENV = "CHATROOM_DESK_OPERATORS"
SECRET_KEY_ENV = "CHATROOM_SECRET_KEY"
CHATROOM_HOST_ENV = "CHATROOM_HOST"
CHATROOM_PORT_ENV = "CHATROOM_PORT"
CHATROOM_WORKERS_ENV = "CHATROOM_WORKERS"
DEFAULT_CHATROOM_HOST = "127.0.0.1"
DEFAULT_CHATROOM_PORT = 8080
SCALED_REPLICAS = "2"
SCALED_WORKERS = "2"
OPERATOR_NAME = "operator"
OPERATOR_PASSWORD_FILE = "operator-password"
RUN_LOG = "run.log"
# Never inherited: each goes only to the parts that use it.
SECRET_ENVS = (TOKEN_ENV, DESK_TOKEN_ENV, OPERATORS_ENV, SECRET_KEY_ENV)
ALL_INTERFACES = ("0.0.0.0", "::", "")
OURS = "(ours)"


@dataclass(frozen=True)
class Options:
    """What the parts need beyond the config file: where the chatroom listens, shared stores, secrets."""

    chatroom_host: str = DEFAULT_CHATROOM_HOST
    operators: str = ""
    secret_key: str = ""
    chatroom_workers: str = ""
    # DATABASE_URL, REDIS_URL, HANDOFF_REPLICAS: given to every part
    shared: dict[str, str] = field(default_factory=dict)


def plan(
    config_file: Path, api_token: str, chatroom_port: int, desk_token: str = "",
    options: Options | None = None,
) -> list[Part]:
    """Return the processes for every local bot (each replica), every local desk and the chatroom."""
    options = options or Options()
    config = load_config(config_file)
    state = state_dir()
    common = {
        CONFIG_ENV: str(config_file.resolve()),
        STATE_DIR_ENV: str(state),
        "PYTHONUNBUFFERED": "1",
        **options.shared,
    }
    parts = []
    for host in local_bots(config):
        check_shared_stores(config, host.id, host.replicas, options.shared)
        action_port = host.port + ACTION_PORT_OFFSET
        bot_env = {
            **common,
            HOST_ID_ENV: host.id,
            # The bot's endpoints and its channel's health check both read this.
            ACTION_URL_ENV: f"http://127.0.0.1:{action_port}/webhook",
            # Read by endpoints.yml's tracker store as long as it names a SQLite file.
            "RASA_TRACKER_DB": str(state / f"{host.id}-tracker.db"),
            TELEMETRY_ENV: "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
        for index, url in enumerate(host.replica_urls):
            port = int(url.rsplit(":", 1)[1])
            parts.append(Part(
                name=host.id if index == 0 else f"{host.id}-{index}",
                argv=[
                    str(RASA_PYTHON), "-m", "handoff.rasa_entry", "run", "--model", "models",
                    "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
                    "--interface", "127.0.0.1", "--port", str(port), "--enable-api",
                ],
                cwd=BOTS_DIR / host.id,
                health_url=f"http://127.0.0.1:{port}/status?token={api_token}",
                env={**bot_env, TOKEN_ENV: api_token},
                restart=host.replicas > 1,
            ))
        parts.append(Part(
            name=f"{host.id}.actions",
            argv=[str(RASA_PYTHON), "-m", "handoff.rasa_entry", "actions", "--actions", "actions",
                  "--port", str(action_port)],
            cwd=BOTS_DIR / host.id,
            health_url=f"http://127.0.0.1:{action_port}/health",
            # rasa-sdk binds 0.0.0.0 unless told otherwise.
            env={**common, HOST_ID_ENV: host.id, "SANIC_HOST": "127.0.0.1"},
            role="actions",
        ))
    for host in config.hosts:
        if host.kind != "parlant" or host.hostname not in LOCAL_NAMES:
            continue
        parts.append(Part(
            name=host.id,
            argv=[sys.executable, "-m", "desk", "--host-id", host.id],
            cwd=REPO_ROOT,
            health_url=f"http://127.0.0.1:{host.port}/healthz",
            # The desk accepts only the chatroom's calls: both get this token, nobody else.
            env={**common, HOST_ID_ENV: host.id, DESK_TOKEN_ENV: desk_token},
            role="desk",
        ))
    chatroom_env = {
        **common,
        CHATROOM_HOST_ENV: options.chatroom_host,
        CHATROOM_PORT_ENV: str(chatroom_port),
        DESK_TOKEN_ENV: desk_token,
    }
    for name, value in (
        (OPERATORS_ENV, options.operators), (SECRET_KEY_ENV, options.secret_key),
        (CHATROOM_WORKERS_ENV, options.chatroom_workers),
    ):
        if value:
            chatroom_env[name] = value
    parts.append(Part(
        name="chatroom",
        # What `python -m chatroom` re-executes itself as, so that gevent patches the standard
        # library first; starting it so directly saves importing the app twice.
        argv=[sys.executable, "-m", "gevent.monkey", "--module", "chatroom"],
        cwd=REPO_ROOT,
        health_url=f"http://{probe_host(options.chatroom_host)}:{chatroom_port}/healthz",
        env=chatroom_env,
        role="chatroom",
    ))
    return parts


def with_fork_server(parts: list[Part], state: Path) -> list[Part]:
    """Serve every Rasa server from one process that imports Rasa once, when their models allow.

    Rasa's imports are most of its start-up, and two cores can't pay them once
    per server quickly. A model that needs TensorFlow keeps its own process
    (forking after TensorFlow has started is not safe).
    """
    servers = [part for part in parts if part.role == "bot"]
    if not servers or any(needs_tensorflow(components_for("run", rasa_args(p), p.cwd)) for p in servers):
        return parts
    spec = state / "run" / "rasa-servers.json"
    spec.unlink(missing_ok=True)
    spec.touch(mode=0o600)  # it holds the API token; the fork server deletes it once read
    spec.write_text(json.dumps([
        {"name": part.name, "cwd": str(part.cwd), "env": part.env, "args": rasa_args(part),
         "restart": part.restart}
        for part in servers
    ]))
    shared_env = {
        name: value for name, value in servers[0].env.items()
        if name not in (TOKEN_ENV, HOST_ID_ENV, ACTION_URL_ENV, "RASA_TRACKER_DB")
    }
    fork_server = Part(
        name="rasa",
        argv=[str(RASA_PYTHON), "-m", "handoff.rasa_entry", "serve", str(spec)],
        cwd=REPO_ROOT,
        env=shared_env,
        role="rasa",
        members=servers,
    )
    return [fork_server] + [part for part in parts if part.role != "bot"]


def rasa_args(part: Part) -> list[str]:
    """Return the ``rasa run`` arguments of a bot's part."""
    return part.argv[part.argv.index("run") + 1:]


def local_bots(config: HandoffConfig) -> list:
    """Return the kind: rasa hosts this machine starts: those with a folder under bots/."""
    bots = []
    for host in config.hosts:
        bot_dir = BOTS_DIR / host.id
        if host.kind != "rasa" or not bot_dir.is_dir():
            continue
        if not any((bot_dir / "models").glob("*.tar.gz")):
            raise ConfigError(f"{bot_dir}: no trained model in models/ (run `make train`)")
        bots.append(host)
    return bots


def check_shared_stores(config: HandoffConfig, host_id: str, replicas: int, shared: dict[str, str]) -> None:
    """Refuse replicas without the tracker and lock store they must share."""
    missing = [name for name in (databases.DATABASE_URL_ENV, databases.REDIS_URL_ENV) if not shared.get(name)]
    if replicas > 1 and missing:
        raise ConfigError(
            f"{config.path}: host '{host_id}' has {replicas} replicas, which must share one tracker "
            f"and lock store: set {' and '.join(missing)}, or use `make run-scaled`"
        )


def probe_host(host: str) -> str:
    """Return where to reach a server listening on ``host`` from this machine."""
    if host in ALL_INTERFACES:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def public_url(host: str, port: int) -> str:
    """Return the address to print for a browser: localhost unless a specific interface was chosen."""
    if host in ALL_INTERFACES or host == DEFAULT_CHATROOM_HOST:
        return f"http://localhost:{port}"
    return f"http://{probe_host(host)}:{port}"


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_state(state: Path) -> None:
    """Create the state folder for this user only (0700); tighten one left open by an older run."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    state.chmod(0o700)
    (state / "run").mkdir(mode=0o700, exist_ok=True)


def shown(path: Path) -> str:
    """Return ``path`` relative to the current folder when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def operator_login(state: Path) -> tuple[str, str]:
    """Make an operator for this run; return CHATROOM_DESK_OPERATORS and the line to print.

    The password goes to a 0600 file, never to the terminal or a log.
    """
    password = secrets.token_urlsafe(12)
    path = state / OPERATOR_PASSWORD_FILE
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return f"{OPERATOR_NAME}:{password}", f"name {OPERATOR_NAME}, password in {shown(path)}"


def shared_stores(args: argparse.Namespace, state: Path) -> tuple[list[Part], dict[str, str]]:
    """Return the database parts to start first and the settings every other part gets."""
    shared = {
        name: os.environ[name]
        for name in (databases.DATABASE_URL_ENV, databases.REDIS_URL_ENV, REPLICAS_ENV)
        if os.environ.get(name)
    }
    parts = []
    if args.scaled and databases.DATABASE_URL_ENV not in shared:
        part, shared[databases.DATABASE_URL_ENV] = (
            (None, OURS) if args.check else databases.postgresql(state, free_port())
        )
        parts.append(part)
    if args.scaled and databases.REDIS_URL_ENV not in shared:
        part, shared[databases.REDIS_URL_ENV] = (
            (None, OURS) if args.check else databases.redis(state, free_port())
        )
        parts.append(part)
    parts = [part for part in parts if part is not None]
    for part in parts:
        # Every part reconnects to a database that comes back.
        part.restart = True
    return parts, shared


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m handoff.run", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=config_path(),
        help="handoff config file (default: handoff_config.yml; $HANDOFF_CONFIG)",
    )
    parser.add_argument(
        "--host", default=os.environ.get(CHATROOM_HOST_ENV) or DEFAULT_CHATROOM_HOST,
        help=f"interface the chatroom listens on (default {DEFAULT_CHATROOM_HOST}; ${CHATROOM_HOST_ENV})",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get(CHATROOM_PORT_ENV) or DEFAULT_CHATROOM_PORT),
        help=f"chatroom port (default {DEFAULT_CHATROOM_PORT}; ${CHATROOM_PORT_ENV})",
    )
    parser.add_argument(
        "--scaled", action="store_true",
        help="PostgreSQL and Redis (ours unless DATABASE_URL / REDIS_URL are set), "
        f"{SCALED_WORKERS} chatroom workers, {SCALED_REPLICAS} replicas of each bot",
    )
    parser.add_argument("--verbose", action="store_true", help="show every part's output from its start")
    parser.add_argument("--check", action="store_true", help="validate the config, print the plan, exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    # Everything the launcher and its children write (databases, transcripts, keys) is ours alone.
    os.umask(0o077)
    if args.scaled:
        os.environ.setdefault(REPLICAS_ENV, SCALED_REPLICAS)
        os.environ.setdefault(CHATROOM_WORKERS_ENV, SCALED_WORKERS)
    # Rasa's HTTP API is on loopback only, and still needs this token.
    api_token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    desk_token = os.environ.get(DESK_TOKEN_ENV) or secrets.token_urlsafe(24)
    state = state_dir()
    options = Options(
        chatroom_host=args.host,
        operators=os.environ.get(OPERATORS_ENV, ""),
        secret_key=os.environ.get(SECRET_KEY_ENV, ""),
        chatroom_workers=os.environ.get(CHATROOM_WORKERS_ENV, ""),
    )
    try:
        if not args.check:
            prepare_state(state)
        database_parts, shared = shared_stores(args, state)
        parts = plan(args.config, api_token, args.port, desk_token, replace(options, shared=shared))
    except (ConfigError, databases.DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for name, value in shared.items():
            if value == OURS:
                print(f"{name:<20} ours, started first under {shown(state)}")
        for part in parts:
            print(f"{part.name:<20} {part.health_url.split('?')[0]}")
        return 0

    ready_lines = [f"ready at {public_url(args.host, args.port)}"]
    if any(part.role == "desk" for part in parts) and not options.operators:
        # A desk nobody can log into is no use; make one operator for this run.
        operators, login = operator_login(state)
        chatroom = next(part for part in parts if part.role == "chatroom")
        chatroom.env[OPERATORS_ENV] = operators
        ready_lines.append(
            f"operator console at {public_url(args.host, args.port)}/desk ({login}; "
            f"set {OPERATORS_ENV} to choose your own)"
        )
    parts = with_fork_server(parts, state)
    return supervise(database_parts, parts, state, ready_lines, args.verbose, started)


def supervise(
    first: list[Part], then: list[Part], state: Path, ready_lines: list[str], verbose: bool, started: float,
) -> int:
    """Start the databases, then everything else; run until a part stops or a signal comes."""
    base_env = {name: value for name, value in os.environ.items() if name not in SECRET_ENVS}
    log_path = state / RUN_LOG
    with log_path.open("w") as log:
        supervisor = Supervisor(log=log, verbose=verbose)
        supervisor.width = max(len(unit.name) for part in first + then for unit in part.members or [part])
        signal.signal(signal.SIGINT, supervisor.request_stop)
        signal.signal(signal.SIGTERM, supervisor.request_stop)
        supervisor.say(f"each part's output goes to {shown(log_path)} until it answers")
        stages = [stage for stage in (first, then) if stage]
        try:
            for stage in stages:
                supervisor.start(stage, base_env)
                if not supervisor.wait_until_up(stage):
                    break
            else:
                for line in ready_lines:
                    supervisor.say(line)
                supervisor.say(f"up in {time.monotonic() - started:.1f} s; Ctrl-C stops everything")
                supervisor.run()
        finally:
            if not supervisor.failed:
                supervisor.say("stopping")
            supervisor.stop_all([[part.name for part in stage] for stage in reversed(stages)])
            supervisor.say("stopped")
    return 1 if supervisor.failed else 0


if __name__ == "__main__":
    sys.exit(main())
