"""The launcher: what `make run` trains, what it starts, with which settings and secrets, and how it stops."""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import io
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from handoff import databases
from handoff.config import BOTS_DIR, DEFAULT_CONFIG_PATH, REPO_ROOT, ConfigError, load_config
from handoff.rasa_entry import components_for, needs_tensorflow, set_action_url
from handoff.run import (
    ACTION_PORT_OFFSET,
    RASA_PYTHON,
    Options,
    plan,
    shared_stores,
    with_fork_server,
)
from handoff.supervisor import Part, Supervisor
from tests.stack import API_TOKEN, Stack, StackProcess, free_port, running_stack
from tests.test_exposure import listening_addresses
from tests.test_handoff_stack import ASK_FOR_SOMEONE_ELSE

TRAIN_BOTS = REPO_ROOT / "scripts" / "train-bots"
RASA_VERSION = re.search(r"^RASA_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)[1]
STOP_DEADLINE = 60


def load_train_bots():
    """Import scripts/train-bots (a script without .py) as a module."""
    loader = importlib.machinery.SourceFileLoader("train_bots", str(TRAIN_BOTS))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("train_bots", loader))
    loader.exec_module(module)
    return module


def would_train(bots_dir: Path | None = None, version: str = RASA_VERSION) -> list[str]:
    """Return the lines `make train` would print before training (empty: it trains nothing)."""
    command = [str(TRAIN_BOTS), "--dry-run", "--rasa-version", version]
    if bots_dir is not None:
        command += ["--bots-dir", str(bots_dir)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


@pytest.fixture
def trained_copy(tmp_path: Path) -> Path:
    """Return a copy of bots/helpdesk's training inputs with a model and a current fingerprint."""
    bot = tmp_path / "bots" / "helpdesk"
    bot.mkdir(parents=True)
    for name in ("config.yml", "domain.yml"):
        shutil.copy(BOTS_DIR / "helpdesk" / name, bot / name)
    shutil.copytree(BOTS_DIR / "helpdesk" / "data", bot / "data")
    (bot / "models").mkdir()
    (bot / "models" / "helpdesk.tar.gz").write_bytes(b"a model")
    train_bots = load_train_bots()
    current = train_bots.fingerprint(bot, RASA_VERSION)
    train_bots.write_fingerprint(bot / "models" / "helpdesk.fingerprint", current)
    return bot


def test_make_run_trains_no_bot_whose_inputs_did_not_change():
    assert would_train() == [], "`make train` ran before the tests, so every model is current"


def test_touching_a_data_file_does_not_retrain_but_editing_one_does(trained_copy: Path):
    data_file = trained_copy / "data" / "nlu" / "basics.yml"
    assert would_train(trained_copy.parent) == []
    os.utime(data_file)
    assert would_train(trained_copy.parent) == []
    data_file.write_text(data_file.read_text() + "\n")
    assert would_train(trained_copy.parent) == ["training helpdesk because data/nlu/basics.yml changed"]


def test_adding_or_removing_a_training_file_retrains(trained_copy: Path):
    (trained_copy / "data" / "rules" / "extra.yml").write_text("version: '3.1'\n")
    assert would_train(trained_copy.parent) == ["training helpdesk because data/rules/extra.yml was added"]
    (trained_copy / "data" / "rules" / "extra.yml").unlink()
    (trained_copy / "data" / "nlu" / "basics.yml").unlink()
    assert would_train(trained_copy.parent) == ["training helpdesk because data/nlu/basics.yml was removed"]


def test_editing_the_config_or_changing_rasa_retrains(trained_copy: Path):
    assert would_train(trained_copy.parent, version="3.6.22") == [
        f"training helpdesk because Rasa changed ({RASA_VERSION} -> 3.6.22)"
    ]
    (trained_copy / "config.yml").write_text((trained_copy / "config.yml").read_text() + "# tuned\n")
    assert would_train(trained_copy.parent) == ["training helpdesk because config.yml changed"]


def test_a_bot_without_a_model_or_fingerprint_is_trained(trained_copy: Path):
    (trained_copy / "models" / "helpdesk.fingerprint").unlink()
    assert would_train(trained_copy.parent) == ["training helpdesk (its model has no fingerprint yet)"]
    (trained_copy / "models" / "helpdesk.tar.gz").unlink()
    assert would_train(trained_copy.parent) == ["training helpdesk (no model yet)"]


def test_committed_endpoints_name_the_action_server_of_handoff_config():
    for host in load_config(DEFAULT_CONFIG_PATH).hosts:
        endpoints = BOTS_DIR / host.id / "endpoints.yml"
        if not endpoints.exists():
            continue
        url = yaml.safe_load(endpoints.read_text())["action_endpoint"]["url"]
        assert url == f"http://localhost:{host.port + ACTION_PORT_OFFSET}/webhook", endpoints


def test_launchers_copy_of_endpoints_changes_the_action_url_only():
    original = (BOTS_DIR / "helpdesk" / "endpoints.yml").read_text()
    copy = yaml.safe_load(set_action_url(original, "http://127.0.0.1:40123/webhook"))
    expected = yaml.safe_load(original)
    expected["action_endpoint"]["url"] = "http://127.0.0.1:40123/webhook"
    assert copy == expected
    assert yaml.safe_load(set_action_url("tracker_store:\n  type: SQL\n", "http://a:1/webhook")) == {
        "tracker_store": {"type": "SQL"}, "action_endpoint": {"url": "http://a:1/webhook"},
    }


def test_our_models_need_no_tensorflow_and_the_default_pipeline_does(tmp_path: Path):
    for bot in ("helpdesk", "financial"):
        assert not needs_tensorflow(components_for("run", ["--model", "models"], BOTS_DIR / bot))
        assert not needs_tensorflow(components_for("train", [], BOTS_DIR / bot))
    (tmp_path / "config.yml").write_text("recipe: default.v1\nlanguage: en\n")
    assert needs_tensorflow(components_for("train", [], tmp_path))
    assert needs_tensorflow(["WhitespaceTokenizer", "DIETClassifier"])
    assert needs_tensorflow(["mybot.components.CountVectorsFeaturizer"]), "a custom class is unknown"


def test_left_out_tensorflow_can_be_subclassed_but_never_run():
    program = (
        "from handoff.rasa_entry import leave_out_tensorflow\n"
        "leave_out_tensorflow()\n"
        "import tensorflow as tf\n"
        "from tensorflow.keras import backend\n"
        "class Layer(tf.keras.layers.Layer):\n"
        "    def call(self, x: tf.Tensor) -> tf.Tensor: ...\n"
        "Layer()\n"
        "tf.constant(1)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    assert result.stderr.splitlines()[-1] == (
        "RuntimeError: tensorflow.constant needs TensorFlow, which this process left out because its "
        "model uses no TensorFlow component (start it with the plain `rasa` command)"
    )


def write_config(tmp_path: Path, hosts: dict) -> Path:
    path = tmp_path / "handoff_config.yml"
    path.write_text(yaml.safe_dump({"handoff_hosts": hosts}, sort_keys=False))
    return path


BOT_AND_DESK = {
    "helpdesk": {"title": "Helpdesk Assistant", "url": "http://localhost:5005"},
    "financial": {"title": "Financial Assistant", "url": "http://localhost:5006"},
    "human": {"title": "Support team", "url": "http://localhost:8800", "kind": "parlant"},
}
SHARED = {"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/handoff", "REDIS_URL": "redis://:p@127.0.0.1:2/0"}


def test_each_secret_reaches_only_the_parts_that_use_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path / "state"))
    options = Options(operators="alice:pw-secret", secret_key="key-secret", shared=SHARED)
    parts = plan(write_config(tmp_path, BOT_AND_DESK), "api-secret", 8080, "desk-secret", options)
    holders = {
        secret: sorted(part.name for part in parts if secret in part.env.values())
        for secret in ("api-secret", "desk-secret", "alice:pw-secret", "key-secret")
    }
    assert holders == {
        "api-secret": ["financial", "helpdesk"],
        "desk-secret": ["chatroom", "human"],
        "alice:pw-secret": ["chatroom"],
        "key-secret": ["chatroom"],
    }
    for part in parts:
        assert not {"api-secret", "desk-secret"} & set(" ".join(part.argv).split()), part.name
        assert part.env["DATABASE_URL"] == SHARED["DATABASE_URL"], part.name


def test_each_replica_is_a_rasa_server_of_its_own_sharing_one_action_server(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path / "state"))
    hosts = {"helpdesk": {**BOT_AND_DESK["helpdesk"], "replicas": 2}}
    parts = plan(write_config(tmp_path, hosts), "t", 8080, options=Options(shared=SHARED))
    servers = {part.name: part.argv[part.argv.index("--port") + 1] for part in parts if "--port" in part.argv}
    assert servers == {"helpdesk": "5005", "helpdesk-1": "5105", "helpdesk.actions": "5055"}
    assert {part.env["ACTION_SERVER_URL"] for part in parts if part.role == "bot"} == {
        "http://127.0.0.1:5055/webhook"
    }


def test_replicas_without_shared_stores_are_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path / "state"))
    hosts = {"helpdesk": {**BOT_AND_DESK["helpdesk"], "replicas": 2}}
    with pytest.raises(ConfigError, match="host 'helpdesk' has 2 replicas, which must share one tracker "
                       "and lock store: set DATABASE_URL and REDIS_URL, or use `make run-scaled`"):
        plan(write_config(tmp_path, hosts), "t", 8080)


def test_rasa_servers_share_one_fork_server_that_gets_the_token_in_a_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path))
    (tmp_path / "run").mkdir()
    parts = with_fork_server(plan(write_config(tmp_path, BOT_AND_DESK), "api-secret", 8080), tmp_path)
    (fork_server,) = [part for part in parts if part.members]
    assert [member.name for member in fork_server.members] == ["helpdesk", "financial"]
    assert "api-secret" not in fork_server.env.values()
    spec = Path(fork_server.argv[-1])
    assert stat.S_IMODE(spec.stat().st_mode) == 0o600
    assert "api-secret" in spec.read_text()
    assert [part.name for part in parts if part.role == "bot"] == []


def test_existing_database_and_redis_are_used_and_none_is_started(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", SHARED["DATABASE_URL"])
    monkeypatch.setenv("REDIS_URL", SHARED["REDIS_URL"])
    parts, shared = shared_stores(argparse.Namespace(scaled=True, check=False), tmp_path)
    assert parts == []
    assert shared == SHARED


def test_a_part_that_stops_while_starting_shows_its_last_lines_and_stops_the_others(tmp_path: Path):
    out = io.StringIO()
    supervisor = Supervisor(out=out)
    failing = Part("failing", [sys.executable, "-c", "print('cannot read models/'); raise SystemExit(3)"],
                   tmp_path, ready=lambda: False)
    waiting = Part("waiting", [sys.executable, "-c", "import time; time.sleep(600)"], tmp_path,
                   ready=lambda: False)
    supervisor.start([failing, waiting], dict(os.environ))
    assert not supervisor.wait_until_up([failing, waiting])
    supervisor.stop_all([["failing", "waiting"]])
    assert out.getvalue().splitlines() == [
        "starting failing",
        "starting waiting",
        "failing  | cannot read models/",
        "failing stopped (exit code 3); stopping everything",
    ]
    assert supervisor.processes["waiting"].poll() is not None


def test_plain_rasa_run_actions_in_a_bot_folder_needs_no_exported_variable(tmp_path: Path):
    port = free_port()
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("HANDOFF_", "ACTION_SERVER", "RASA_TRACKER"))
    }
    env["SANIC_HOST"] = "127.0.0.1"
    process = subprocess.Popen(
        [str(RASA_PYTHON.parent / "rasa"), "run", "actions", "--port", str(port)],
        cwd=BOTS_DIR / "helpdesk", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health"), process, "rasa run actions")
        tracker = {
            "sender_id": "plain", "slots": {}, "latest_message": {}, "events": [], "paused": False,
            "followup_action": None, "active_loop": {}, "latest_action_name": None,
        }
        reply = requests.post(
            f"http://127.0.0.1:{port}/webhook",
            json={"next_action": "action_handoff_options", "tracker": tracker, "domain": {}}, timeout=30,
        )
        reply.raise_for_status()
        titles = [button["title"] for response in reply.json()["responses"] for button in response["buttons"]]
        assert titles == ["Financial Assistant", "Support team"], "the folder name told it it is helpdesk"
    finally:
        process.terminate()
        process.wait(timeout=30)


def answers(url: str, **params) -> bool:
    try:
        return requests.get(url, params=params, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{what} did not answer in {timeout} s"
        time.sleep(0.2)


# ---- on the real stack shared by the suite (both bots, their action servers, the chatroom)

def rasa_servers(processes: list[StackProcess]) -> list[StackProcess]:
    return [p for p in processes if "handoff.rasa_entry" in p.argv and {"run", "serve"} & set(p.argv)]


@pytest.mark.stack
def test_no_command_line_of_the_stack_shows_a_token(stack: Stack):
    processes = stack.processes()
    assert len(rasa_servers(processes)) >= 2
    for process in processes:
        assert API_TOKEN not in process.command, process.command


@pytest.mark.stack
def test_only_rasa_servers_hold_the_rasa_token(stack: Stack):
    processes = stack.processes()
    servers = {process.pid for process in rasa_servers(processes)}
    holders = {process.pid for process in processes if API_TOKEN in process.environ.values()}
    assert holders <= servers
    others = {part_name(p) for p in processes if p.pid not in servers}
    assert others >= {"chatroom", "actions"}


@pytest.mark.stack
def test_state_folder_and_files_are_private(stack: Stack):
    person = stack.person()
    person.start()
    person.say("hi")
    assert stat.S_IMODE(stack.state_dir.stat().st_mode) == 0o700
    found = list(stack.state_dir.rglob("*"))
    assert any(path.name == "chatroom.sqlite" for path in found)
    for path in found:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:o}"


@pytest.mark.stack
def test_half_saved_config_leaves_the_last_good_one_in_force(stack: Stack):
    original = stack.config_path.read_text()
    cut = original.index("url: http") + len("url: ht")
    person = stack.person()
    person.start()
    try:
        stack.config_path.write_text(original[:cut])
        person.say("hi")
        assert person.texts("bot"), "the chatroom still routes with the last good config"
        person.say(ASK_FOR_SOMEONE_ELSE)
        assert "Financial Assistant" in person.buttons(), "the action server still offers the hosts"
    finally:
        stack.config_path.write_text(original)


# ---- a stack of the launcher's own: one bot, the desk, the chatroom on CHATROOM_HOST

CHATROOM_HOST = "127.0.0.2"  # still loopback, yet not the default


@pytest.fixture(scope="module")
def desk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    hosts = {
        "helpdesk": {"title": "Helpdesk Assistant", "url": f"http://localhost:{free_port(also_free_at=50)}"},
        "human": {"title": "Support team", "url": f"http://localhost:{free_port(also_free_at=18)}",
                  "kind": "parlant"},
    }
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHATROOM_HOST", CHATROOM_HOST)
        for name in ("CHATROOM_DESK_OPERATORS", "DESK_API_TOKEN"):
            env.delenv(name, raising=False)
        try:
            with running_stack({"handoff_hosts": hosts}, tmp_path_factory.mktemp("launcher")) as stack:
                yield stack
        except RuntimeError as exc:
            pytest.fail(str(exc))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.stack
def test_chatroom_listens_where_chatroom_host_says(desk_stack: Stack):
    assert listening_addresses(port_of(desk_stack.chatroom_url)) == {CHATROOM_HOST}
    assert f"ready at {desk_stack.chatroom_url}\n" in desk_stack.log_path.read_text()


@pytest.mark.stack
def test_desk_token_reaches_only_the_desk_and_the_chatroom(desk_stack: Stack):
    processes = desk_stack.processes()
    holders = [p for p in processes if p.environ.get("DESK_API_TOKEN")]
    assert {part_name(p) for p in holders} == {"chatroom", "desk"}
    assert len({p.environ["DESK_API_TOKEN"] for p in holders}) == 1
    assert {part_name(p) for p in processes if p not in holders} >= {"rasa", "actions"}
    assert all("DESK_API_TOKEN" not in p.environ for p in processes if p not in holders)


def part_name(process: StackProcess) -> str:
    """Return which part a process belongs to, from the part's command line."""
    for name in ("chatroom", "desk", "actions"):
        if f" {name}" in f" {process.part}" or f"-m {name}" in process.part:
            return name
    return "rasa" if "handoff.rasa_entry" in process.part else process.part


@pytest.mark.stack
def test_generated_operator_password_is_in_a_private_file_and_never_printed(desk_stack: Stack):
    path = desk_stack.state_dir / "operator-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    output = desk_stack.log_path.read_text()
    assert f"password in {path}" in output
    assert password not in output
    assert password not in (desk_stack.state_dir / "run.log").read_text()
    login = requests.post(
        f"{desk_stack.chatroom_url}/desk/login", data={"name": "operator", "password": password},
        allow_redirects=False, timeout=30,
    )
    assert login.status_code == 302


def gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def assert_stops_everything(stack: Stack, ports: list[int]) -> None:
    pids = [process.pid for process in stack.processes()]
    assert pids
    stack.stop()
    deadline = time.monotonic() + STOP_DEADLINE
    while not gone(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gone(pids), [StackProcess.read(pid) for pid in pids if Path(f"/proc/{pid}").exists()]
    assert [port for port in ports if listening_addresses(port)] == [], "nothing listens any more"


@pytest.mark.stack
def test_ctrl_c_stops_every_process(desk_stack: Stack):
    ports = [port_of(url) for url in desk_stack.hosts.values()]
    assert_stops_everything(desk_stack, ports + [port_of(desk_stack.chatroom_url)])


# ---- the scaled stack: our PostgreSQL and Redis, two chatroom workers, two replicas of the bot

@pytest.fixture(scope="module")
def scaled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    hosts = {"helpdesk": {
        "title": "Helpdesk Assistant", "url": f"http://localhost:{free_port(also_free_at=(50, 100))}",
    }}
    with pytest.MonkeyPatch.context() as env:
        for name in ("DATABASE_URL", "REDIS_URL", "CHATROOM_WORKERS", "HANDOFF_REPLICAS"):
            env.delenv(name, raising=False)
        try:
            root = tmp_path_factory.mktemp("scaled")
            with running_stack({"handoff_hosts": hosts}, root, scaled=True) as stack:
                yield stack
        except RuntimeError as exc:
            pytest.fail(str(exc))


def database_ports(stack: Stack) -> tuple[int, int]:
    """Return the ports of the stack's PostgreSQL and Redis, read from their command line and config."""
    (postgres,) = [p for p in stack.processes() if p.argv[0].endswith("/postgres")]
    postgres_port = int(next(arg for arg in postgres.argv if arg.startswith("port=")).split("=")[1])
    redis_conf = (stack.state_dir / "redis" / "redis.conf").read_text()
    return postgres_port, int(re.search(r"^port (\d+)$", redis_conf, re.M)[1])


@pytest.mark.stack
def test_scaled_stack_runs_postgresql_on_loopback_with_a_password(scaled_stack: Stack):
    port, _ = database_ports(scaled_stack)
    assert listening_addresses(port) == {"127.0.0.1"}
    password = (scaled_stack.state_dir / "postgres-password").read_text().strip()
    psql = [str(databases.postgres_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "handoff",
            "-d", "handoff", "-tAc", "SELECT current_database()"]
    def ask(with_password: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PGPASSWORD": with_password}
        return subprocess.run(psql, env=env, capture_output=True, text=True, check=False)

    assert ask("wrong").returncode != 0
    answer = ask(password)
    assert answer.stdout.strip() == "handoff", answer.stderr
    (postgres,) = [p for p in scaled_stack.processes() if p.argv[0].endswith("/postgres")]
    owner = Path(f"/proc/{postgres.pid}").stat().st_uid
    assert owner == (os.geteuid() if os.geteuid() else pwd.getpwnam("postgres").pw_uid)


@pytest.mark.stack
def test_scaled_stack_runs_redis_on_loopback_with_a_password(scaled_stack: Stack):
    _, port = database_ports(scaled_stack)
    assert listening_addresses(port) == {"127.0.0.1"}
    password = (scaled_stack.state_dir / "redis-password").read_text().strip()
    assert databases.redis_answers(port, password)
    assert not databases.redis_answers(port, "wrong")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert connection.recv(64).startswith(b"-NOAUTH")


@pytest.mark.stack
def test_scaled_stack_runs_two_replicas_of_each_bot(scaled_stack: Stack):
    port = port_of(scaled_stack.hosts["helpdesk"])
    for replica_port in (port, port + 100):
        assert answers(f"http://127.0.0.1:{replica_port}/status", token=API_TOKEN), replica_port
        assert listening_addresses(replica_port) == {"127.0.0.1"}
    person = scaled_stack.person()
    person.start()
    person.say("hi")
    assert person.texts("bot")


@pytest.mark.stack
def test_scaled_stack_gives_every_part_the_shared_settings(scaled_stack: Stack):
    postgres_port, redis_port = database_ports(scaled_stack)
    apps = [p for p in scaled_stack.processes() if part_name(p) in ("rasa", "actions", "chatroom")]
    assert {part_name(p) for p in apps} == {"rasa", "actions", "chatroom"}
    for process in apps:
        database_url = process.environ.get("DATABASE_URL", "")
        assert database_url.endswith(f"@127.0.0.1:{postgres_port}/handoff"), process.command
        assert process.environ.get("REDIS_URL", "").endswith(f"@127.0.0.1:{redis_port}/0"), process.command
        assert process.environ.get("HANDOFF_REPLICAS") == "2"
    chatroom = [p for p in apps if part_name(p) == "chatroom"]
    assert {p.environ.get("CHATROOM_WORKERS") for p in chatroom} == {"2"}
    assert len(chatroom) == 3, "gunicorn's master and two workers"


@pytest.mark.stack
def test_ctrl_c_stops_the_scaled_stack_databases_included(scaled_stack: Stack):
    bot_port = port_of(scaled_stack.hosts["helpdesk"])
    ports = [bot_port, bot_port + 100, bot_port + ACTION_PORT_OFFSET, port_of(scaled_stack.chatroom_url)]
    assert_stops_everything(scaled_stack, ports + list(database_ports(scaled_stack)))
