"""handoff_config.yml is validated in one place, and a bad file names the file, the key and the fix."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handoff.config import (
    REPO_ROOT,
    ConfigError,
    config_problem,
    current_config,
    load_config,
    normalize_url,
    own_host_id,
)

GOOD = """\
handoff_hosts:
  helpdesk:
    title: Helpdesk Assistant
    url: http://localhost:5005
  financial:
    title: Financial Assistant
    url: http://localhost:5006
    kind: rasa
  human:
    title: Support team
    url: http://localhost:8800
    kind: parlant
entry: financial
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "handoff_config.yml"
    path.write_text(text)
    return path


def test_good_config_loads_hosts_in_order(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert [h.id for h in config.hosts] == ["helpdesk", "financial", "human"]
    assert config.entry_host.title == "Financial Assistant"
    assert config.get_host("helpdesk").port == 5005
    assert config.get_host("helpdesk").kind == "rasa"
    assert config.get_host("human").kind == "parlant"
    assert [h.id for h in config.other_hosts("helpdesk")] == ["financial", "human"]


def test_starter_pack_file_loads_unchanged(tmp_path):
    starter = (
        "handoff_hosts:\n"
        "  helpdesk_assistant:\n"
        '    title: "Helpdesk Assistant"\n'
        '    url: "http://localhost:5005"\n'
        "  financial_demo:\n"
        '    title: "Financial Assistant"\n'
        '    url: "http://localhost:5006"\n'
    )
    config = load_config(write(tmp_path, starter))
    assert config.entry == "helpdesk_assistant"


BROKEN = [
    pytest.param("handoff_hosts: [a, b]\n", "'handoff_hosts' must map host ids", id="hosts-not-mapping"),
    pytest.param("entry: helpdesk\n", "'handoff_hosts' must map host ids", id="no-hosts"),
    pytest.param("- just a list\n", "expected a mapping", id="top-level-list"),
    pytest.param("handoff_hosts:\n  a:\n   title: [\n", "not valid YAML at line", id="bad-yaml"),
    pytest.param(
        GOOD + "hosts: {}\n", "unknown key 'hosts' at the top level", id="unknown-top-key"
    ),
    pytest.param(
        "handoff_hosts:\n  billing:\n    title: Billing\n",
        "host 'billing' has no url (add url: http://host:port)",
        id="missing-url",
    ),
    pytest.param(
        "handoff_hosts:\n  billing:\n    url: http://localhost:5009\n",
        "host 'billing' has no title",
        id="missing-title",
    ),
    pytest.param(
        "handoff_hosts:\n  billing:\n    title: B\n    url: http://localhost:5009\n    port: 3\n",
        "host 'billing' has unknown key 'port'",
        id="unknown-host-key",
    ),
    pytest.param(
        "handoff_hosts:\n  Billing-Bot:\n    title: B\n    url: http://localhost:5009\n",
        "host id 'Billing-Bot' is not valid",
        id="bad-id",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:5005\n"
        "  b:\n    title: B\n    url: http://LOCALHOST:5005/\n",
        "hosts 'a' and 'b' have the same url",
        id="duplicate-url",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: ftp://localhost:5005\n",
        "host 'a' has url 'ftp://localhost:5005', which is not a plain http(s) url",
        id="bad-url-scheme",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://user@localhost:5005\n",
        "which is not a plain http(s) url",
        id="url-with-userinfo",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:5005\n    kind: slack\n",
        "host 'a' has kind 'slack' (use one of: rasa, parlant, a2a)",
        id="unknown-kind",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:5005\nentry: b\n",
        "entry 'b' is not a host in handoff_hosts (use one of: a)",
        id="unknown-entry",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:5005\n    replicas: 0\n",
        "host 'a' has replicas '0' (use a whole number from 1 to 9)",
        id="replicas-zero",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:5005\n    replicas: two\n",
        "host 'a' has replicas 'two' (use a whole number from 1 to 9)",
        id="replicas-not-a-number",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:5005\n    replicas: true\n",
        "host 'a' has replicas 'True'",
        id="replicas-boolean",
    ),
    pytest.param(
        "handoff_hosts:\n  h:\n    title: H\n    url: http://localhost:8800\n"
        "    kind: parlant\n    replicas: 2\n",
        "host 'h' has replicas, which only a kind: rasa host can have (remove it)",
        id="replicas-on-a-desk",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:65500\n    replicas: 2\n",
        "host 'a' has 2 replicas, so the last would need port 65600",
        id="replicas-past-the-last-port",
    ),
    pytest.param(
        "handoff_hosts:\n  a:\n    title: A\n    url: http://localhost:5005\n    replicas: 2\n"
        "  b:\n    title: B\n    url: http://localhost:5105\n",
        "hosts 'a' and 'b' both use http://localhost:5105",
        id="replica-on-another-hosts-port",
    ),
]


@pytest.mark.parametrize("text, expected", BROKEN)
def test_broken_config_names_file_key_and_fix(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}:")
    assert expected in str(error.value)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="file not found .*HANDOFF_CONFIG"):
        load_config(tmp_path / "nope.yml")


def test_current_config_rereads_a_changed_file(tmp_path):
    path = write(tmp_path, GOOD)
    assert len(current_config(path).hosts) == 3
    path.write_text(GOOD.replace("entry: financial\n", "") + (
        "  billing:\n    title: Billing\n    url: http://localhost:5010\n"
    ))
    assert [h.id for h in current_config(path).hosts][-1] == "billing"


def test_replica_urls_step_100_ports_from_the_url(tmp_path):
    config = load_config(write(tmp_path, GOOD.replace(
        "    url: http://localhost:5005\n", "    url: http://localhost:5005\n    replicas: 3\n"
    )))
    assert config.get_host("helpdesk").replica_urls == (
        "http://localhost:5005", "http://localhost:5105", "http://localhost:5205",
    )
    assert config.get_host("financial").replica_urls == ("http://localhost:5006",)


def test_replicas_setting_widens_local_bots_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDOFF_REPLICAS", "2")
    text = GOOD + "  elsewhere:\n    title: Remote\n    url: http://bots.example.org:5005\n"
    config = load_config(write(tmp_path, text.replace("entry: financial\n", "")))
    assert config.get_host("helpdesk").replicas == 2, "bots/helpdesk/ exists: started here"
    assert config.get_host("financial").replica_urls[1] == "http://localhost:5106"
    assert config.get_host("human").replicas == 1, "a desk has no replicas"
    assert config.get_host("elsewhere").replicas == 1, "not under bots/: someone else runs it"


def test_replicas_setting_must_be_a_small_number(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDOFF_REPLICAS", "lots")
    with pytest.raises(ConfigError, match=r"\$HANDOFF_REPLICAS is 'lots' \(use a whole number from 1 to 9\)"):
        load_config(write(tmp_path, GOOD))


@pytest.mark.parametrize(
    "half_saved",
    [
        pytest.param("", id="empty"),
        pytest.param(GOOD[:40], id="cut-in-a-host"),
        pytest.param(GOOD.replace("    url: http://localhost:5006\n", ""), id="url-line-missing"),
    ],
)
def test_half_saved_file_keeps_the_last_good_config_and_says_why(tmp_path, half_saved, caplog):
    path = write(tmp_path, GOOD)
    good = current_config(path)
    assert config_problem(path) is None
    path.write_text(half_saved)
    assert current_config(path) is good
    problem = config_problem(path)
    assert problem is not None and problem.path == path
    assert problem.message == str(pytest.raises(ConfigError, load_config, path).value)
    assert [r.getMessage() for r in caplog.records] == [
        f"keeping the last good handoff config: {problem.message}"
    ], "logged once, not on every call"
    path.write_text(GOOD.replace("Support team", "Support desk"))
    assert current_config(path).get_host("human").title == "Support desk"
    assert config_problem(path) is None


def test_half_saved_file_names_the_key(tmp_path):
    path = write(tmp_path, GOOD)
    current_config(path)
    path.write_text(GOOD.replace("    url: http://localhost:5006\n", ""))
    assert config_problem(path).message == (
        f"{path}: host 'financial' has no url (add url: http://host:port)"
    )


def test_first_load_of_a_broken_file_still_fails(tmp_path):
    path = write(tmp_path, BAD_CONFIG)
    with pytest.raises(ConfigError, match="has no url"):
        current_config(path)
    assert config_problem(path).message == f"{path}: {BAD_CONFIG_MESSAGE}"


def test_own_host_id_comes_from_the_setting_then_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "billing"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("HANDOFF_HOST_ID", raising=False)
    assert own_host_id() == "billing"
    monkeypatch.setenv("HANDOFF_HOST_ID", "helpdesk")
    assert own_host_id() == "helpdesk"


def test_own_host_id_in_a_folder_that_is_no_host_id_says_what_to_set(tmp_path, monkeypatch):
    folder = tmp_path / "My Bot"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("HANDOFF_HOST_ID", raising=False)
    with pytest.raises(ConfigError, match="folder name 'My Bot' is not a host id .*HANDOFF_HOST_ID"):
        own_host_id()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://localhost:5005", "http://localhost:5005"),
        ("HTTP://LocalHost:5005/", "http://localhost:5005"),
        ("http://localhost.:5005", "http://localhost:5005"),
        ("https://bots.example.org", "https://bots.example.org:443"),
        ("http://evil@localhost:5005", None),
        ("http://localhost:5005?x=1", None),
        ("http://localhost:5005#x", None),
        ("javascript:alert(1)", None),
        ("//localhost:5005", None),
        ("http:\\\\localhost:5005", None),
        ("http://localhost:99999", None),
        ("http://bücher.example", None),
        ("", None),
    ],
)
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected


BAD_CONFIG = "handoff_hosts:\n  billing:\n    title: Billing\n"
BAD_CONFIG_MESSAGE = "host 'billing' has no url (add url: http://host:port)"


def run_with_bad_config(tmp_path: Path, command: list[str], cwd: Path = REPO_ROOT, **env: str):
    path = write(tmp_path, BAD_CONFIG)
    environment = {**os.environ, "HANDOFF_CONFIG": str(path), "HANDOFF_STATE_DIR": str(tmp_path), **env}
    result = subprocess.run(
        command, check=False, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )
    return path, result


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([sys.executable, "-m", "handoff.run"], id="launcher"),
        pytest.param([sys.executable, "-m", "chatroom", "--port", "0"], id="chatroom"),
        pytest.param([sys.executable, "-m", "handoff.config"], id="config-check"),
    ],
)
def test_every_process_exits_on_broken_config(tmp_path, command):
    path, result = run_with_bad_config(tmp_path, command)
    assert result.returncode == 2
    assert f"{path}: {BAD_CONFIG_MESSAGE}" in result.stderr


def test_action_server_exits_on_broken_config(tmp_path):
    rasa_python = REPO_ROOT / ".venv-rasa" / "bin" / "python"
    path, result = run_with_bad_config(
        tmp_path,
        [str(rasa_python), "-m", "rasa_sdk", "--actions", "actions", "--port", "0"],
        cwd=REPO_ROOT / "bots" / "helpdesk",
        HANDOFF_HOST_ID="helpdesk",
    )
    assert result.returncode != 0
    assert f"{path}: {BAD_CONFIG_MESSAGE}" in result.stdout + result.stderr
