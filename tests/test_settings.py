"""Settings say what they mean: yes/no and numbers are parsed explicitly, a bad value stops the start."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from chatroom import settings
from handoff.config import REPO_ROOT
from tests.fakehost import FakeHost
from tests.stack import free_port

FLAGS = [setting for setting in settings.SETTINGS if setting.parse is settings.parse_bool]
NUMBERS = [setting for setting in settings.SETTINGS if isinstance(setting.default, (int, float))
           and not isinstance(setting.default, bool)]


@pytest.mark.parametrize("setting", FLAGS, ids=lambda s: s.variable)
@pytest.mark.parametrize(("raw", "value"), [
    ("False", False), ("false", False), ("no", False), ("off", False), ("0", False),
    ("True", True), ("yes", True), ("ON", True), ("1", True),
])
def test_yes_no_settings_mean_what_they_say(setting, raw, value):
    assert settings.load({setting.variable: raw})[setting.key] is value


@pytest.mark.parametrize("setting", FLAGS, ids=lambda s: s.variable)
def test_an_unknown_yes_no_value_is_refused_by_name(setting):
    with pytest.raises(settings.SettingError, match=f"{setting.variable}='maybe' is not a yes/no value"):
        settings.load({setting.variable: "maybe"})


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.variable)
def test_numbers_are_parsed_and_nonsense_is_refused_by_name(setting):
    assert settings.load({setting.variable: "7"})[setting.key] == 7
    with pytest.raises(settings.SettingError, match=setting.variable):
        settings.load({setting.variable: "lots"})
    with pytest.raises(settings.SettingError, match=setting.variable):
        settings.load({setting.variable: "-1"})


@pytest.fixture
def scripted_host():
    host = FakeHost("Scripted").start()
    yield host
    host.stop()


def start_chatroom(tmp_path: Path, host: FakeHost, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    config = tmp_path / "handoff_config.yml"
    config.write_text(yaml.safe_dump({"handoff_hosts": {"scripted": {"title": "Scripted", "url": host.url}}}))
    port = free_port()
    paths = {"HANDOFF_CONFIG": str(config), "HANDOFF_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [sys.executable, "-m", "chatroom", "--port", str(port)], cwd=REPO_ROOT,
        env={**os.environ, **paths, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("the chatroom did not answer in time")


def test_the_chatroom_refuses_to_start_on_a_bad_value(tmp_path, scripted_host):
    process, _url = start_chatroom(tmp_path, scripted_host, {"CHATROOM_ALLOW_COMMANDS": "maybe"})
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "CHATROOM_ALLOW_COMMANDS='maybe' is not a yes/no value (use true or false)" in output


@pytest.mark.parametrize("off", ["False", "no", "off", "0"])
def test_commands_stay_off_when_the_setting_says_so(tmp_path, scripted_host, off):
    process, url = start_chatroom(tmp_path, scripted_host, {"CHATROOM_ALLOW_COMMANDS": off})
    try:
        wait_ready(process, url)
        person = requests.Session()
        assert person.post(f"{url}/api/conversation", json={}, timeout=10).status_code == 200
        command = '/trigger_handoff{"handoff_to":"x"}'
        answer = person.post(f"{url}/api/messages", json={"text": command}, timeout=10)
        assert answer.status_code == 400
        assert scripted_host.received == []
        assert "can't start with" in answer.json()["error"]
    finally:
        process.terminate()
        process.wait(30)
