"""Settings say what they mean: yes/no and numbers are parsed explicitly, a bad value stops the start."""
from __future__ import annotations

import pytest
import requests

from chatroom import settings
from tests.fakehost import FakeHost
from tests.processes import running_chatroom, start_chatroom

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


def config_for(host: FakeHost) -> dict:
    return {"handoff_hosts": {"scripted": {"title": "Scripted", "url": host.url}}}


def test_the_chatroom_refuses_to_start_on_a_bad_value(tmp_path, scripted_host):
    env = {"CHATROOM_ALLOW_COMMANDS": "maybe"}
    process, _url, log = start_chatroom(config_for(scripted_host), tmp_path, env)
    assert process.wait(timeout=30) == 2
    assert "CHATROOM_ALLOW_COMMANDS='maybe' is not a yes/no value (use true or false)" in log.read_text()


@pytest.mark.parametrize("off", ["False", "no", "off", "0"])
def test_commands_stay_off_when_the_setting_says_so(tmp_path, scripted_host, off):
    with running_chatroom(config_for(scripted_host), tmp_path, {"CHATROOM_ALLOW_COMMANDS": off}) as chatroom:
        person = requests.Session()
        assert person.post(f"{chatroom.url}/api/conversation", json={}, timeout=10).status_code == 200
        command = '/trigger_handoff{"handoff_to":"x"}'
        answer = person.post(f"{chatroom.url}/api/messages", json={"text": command}, timeout=10)
    assert answer.status_code == 400
    assert "can't start with" in answer.json()["error"]
    assert scripted_host.received == []
