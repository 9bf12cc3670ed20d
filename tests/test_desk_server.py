"""The desk process (``python -m desk``): where it listens, where it keeps sessions, when it won't start."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from parlant.adapters.db.json_file import JSONFileDocumentDatabase
from parlant.core.loggers import StdoutLogger
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore
from parlant.core.tracer import LocalTracer

from desk.__main__ import TOOL_PORT_OFFSET
from handoff.config import REPO_ROOT
from tests.stack import free_port
from tests.test_desk import DESK_TOKEN, Desk, env_for, running_desk
from tests.test_desk_store import run
from tests.test_exposure import listening_addresses

AUTH = {"Authorization": f"Bearer {DESK_TOKEN}"}
SQLITE_FILE = Path("desk") / "human" / "parlant.sqlite"


def write_config(root: Path, desk_port: int) -> Path:
    hosts = {
        "helpdesk": {"title": "Helpdesk", "url": f"http://localhost:{free_port()}"},
        "human": {"title": "Support team", "url": f"http://localhost:{desk_port}", "kind": "parlant"},
    }
    path = root / "handoff_config.yml"
    path.write_text(yaml.safe_dump({"handoff_hosts": hosts, "entry": "helpdesk"}, sort_keys=False))
    return path


@pytest.fixture
def desk_root(tmp_path: Path) -> tuple[Path, str]:
    port = free_port(also_free_at=TOOL_PORT_OFFSET)
    return write_config(tmp_path, port), f"http://127.0.0.1:{port}"


def open_session(desk: Desk) -> str:
    """Open a session the way the chatroom does and post a customer message; return its id."""
    agents = requests.get(f"{desk.url}/agents", headers=AUTH, timeout=10).json()
    session = requests.post(
        f"{desk.url}/sessions", json={"agent_id": agents[0]["id"], "title": "kept", "metadata": {"n": 1}},
        headers=AUTH, timeout=10,
    ).json()
    requests.post(
        f"{desk.url}/sessions/{session['id']}/events",
        json={"kind": "message", "source": "customer", "message": "still there after a restart?"},
        headers=AUTH, timeout=10,
    ).raise_for_status()
    return session["id"]


def test_desk_api_and_tool_ports_listen_on_loopback_only(desk_root, tmp_path):
    config, url = desk_root
    with running_desk(config, tmp_path / "state", url, tmp_path / "desk.log"):
        port = int(url.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"127.0.0.1"}
        assert listening_addresses(port + TOOL_PORT_OFFSET) == {"127.0.0.1"}


def test_desk_keeps_sessions_in_sqlite_under_its_home_across_a_restart(desk_root, tmp_path):
    config, url = desk_root
    state = tmp_path / "state"
    with running_desk(config, state, url, tmp_path / "desk.log") as desk:
        session_id = open_session(desk)
    assert (state / SQLITE_FILE).is_file()
    assert not (state / "desk" / "human" / "sessions.json").exists(), "Parlant's JSON store is not used"
    with running_desk(config, state, url, tmp_path / "desk.log") as desk:
        session = desk.session(session_id)
        events = desk.events(session_id)
    assert (session["title"], session["mode"], session["metadata"]) == ("kept", "manual", {"n": 1})
    assert [(e["offset"], e["data"]["message"]) for e in events] == [(0, "still there after a restart?")]


def test_desk_keeps_sessions_in_postgresql_when_database_url_names_it(
    desk_root, tmp_path, postgres_url, monkeypatch
):
    config, url = desk_root
    state = tmp_path / "state"
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    with running_desk(config, state, url, tmp_path / "desk.log") as desk:
        session_id = open_session(desk)
    with running_desk(config, state, url, tmp_path / "desk.log") as desk:
        events = desk.events(session_id)
    assert [e["data"]["message"] for e in events] == ["still there after a restart?"]
    assert not (state / SQLITE_FILE).exists()


def test_desk_brings_along_sessions_an_older_desk_kept_in_parlants_json_files(desk_root, tmp_path):
    config, url = desk_root
    home = tmp_path / "state" / "desk" / "human"
    home.mkdir(parents=True)

    async def older_desk() -> str:
        async with JSONFileDocumentDatabase(StdoutLogger(LocalTracer()), home / "sessions.json") as files:
            async with SessionDocumentStore(files) as store:
                session = await store.create_session(customer_id="guest", agent_id="team", mode="manual")
                await store.create_event(session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t",
                                         {"message": "written before the upgrade"})
                return session.id

    session_id = run(older_desk())
    with running_desk(config, tmp_path / "state", url, tmp_path / "desk.log") as desk:
        events = desk.events(session_id)
    assert [e["data"]["message"] for e in events] == ["written before the upgrade"]
    assert (home / "sessions.json.imported").is_file() and not (home / "sessions.json").exists()


def refusal(config: Path, tmp_path: Path, *args: str, **env: str) -> str:
    """Run ``python -m desk`` expecting it to refuse to start; return what it printed."""
    environment = {**env_for(config, tmp_path / "state"), **env}
    result = subprocess.run(
        [sys.executable, "-m", "desk", *args], cwd=REPO_ROOT, env=environment,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result.stderr


@pytest.mark.parametrize(
    ("human", "expected"),
    [
        ({"url": None}, ["host 'human' has no url", "(add url: http://host:port)"]),
        ({"colour": "blue"}, ["host 'human' has unknown key 'colour'", "(allowed: "]),
        ({"url": "ftp://desk"}, ["host 'human' has url 'ftp://desk'", "(use e.g. http://localhost:"]),
    ],
)
def test_broken_config_stops_the_desk_naming_file_key_and_fix(desk_root, tmp_path, human, expected):
    config, _ = desk_root
    data = yaml.safe_load(config.read_text())
    changed = {**data["handoff_hosts"]["human"], **human}
    data["handoff_hosts"]["human"] = {key: value for key, value in changed.items() if value is not None}
    config.write_text(yaml.safe_dump(data))
    printed = refusal(config, tmp_path, "--host-id", "human")
    assert printed.startswith(f"error: {config}:")
    for words in expected:
        assert words in printed


def test_config_that_is_not_yaml_or_has_no_desk_stops_the_desk(desk_root, tmp_path):
    config, _ = desk_root
    printed = refusal(config, tmp_path, "--host-id", "helpdesk")
    assert f"error: {config}: host 'helpdesk' has kind 'rasa' (the desk serves kind: parlant)" in printed
    data = yaml.safe_load(config.read_text())
    del data["handoff_hosts"]["human"]
    config.write_text(yaml.safe_dump(data))
    printed = refusal(config, tmp_path)
    assert f"error: {config}: no host has kind: parlant (add one, e.g. human)" in printed
    config.write_text("handoff_hosts:\n  human: [unclosed\n")
    printed = refusal(config, tmp_path)
    assert f"error: {config}: not valid YAML" in printed and "(check indentation and quoting)" in printed
    missing = tmp_path / "nowhere.yml"
    printed = refusal(missing, tmp_path)
    assert f"error: {missing}: file not found" in printed and "or set $HANDOFF_CONFIG" in printed


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DESK_API_TOKEN": "short"}, ["$DESK_API_TOKEN is not set or shorter than 16 characters"]),
        ({"DATABASE_URL": "mysql://root:hunter2@127.0.0.1/desk"},
         ["$DATABASE_URL=mysql://root:***@127.0.0.1/desk", "use postgresql://user@host:port/dbname"]),
    ],
)
def test_bad_setting_stops_the_desk_naming_it_and_the_fix(desk_root, tmp_path, env, expected):
    config, _ = desk_root
    printed = refusal(config, tmp_path, **env)
    for words in expected:
        assert words in printed


def test_unreachable_postgresql_stops_the_desk_with_the_fix(desk_root, tmp_path):
    config, _ = desk_root
    url = f"postgresql://desk:hunter2@127.0.0.1:{free_port()}/desk"
    printed = refusal(config, tmp_path, DATABASE_URL=url)
    assert "error: the desk's database postgresql+psycopg://desk:***@127.0.0.1:" in printed
    assert "start it or fix $DATABASE_URL" in printed and "hunter2" not in printed
