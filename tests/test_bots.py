"""Every bot carries the handoff contract, and every local host in the config has its bot."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from handoff.config import REPO_ROOT, load_config

BOTS = sorted(path for path in (REPO_ROOT / "bots").iterdir() if path.is_dir())
HANDOFF_INTENTS = {"human_handoff", "trigger_handoff", "handoff"}
HANDOFF_ACTIONS = {"action_handoff_options", "action_handoff", "action_greet_arrival"}
HANDOFF_RESPONSES = {
    "utter_ask_handoff", "utter_handoff", "utter_no_handoff", "utter_wouldve_handed_off",
    "utter_handoff_arrival", "utter_welcome_back",
}
# Responses the shared actions fill with the host's title.
TITLED_RESPONSES = {
    "utter_handoff", "utter_wouldve_handed_off", "utter_handoff_arrival", "utter_welcome_back",
}
SHAPE = ["config.yml", "domain.yml", "endpoints.yml", "credentials.yml", "data/nlu", "data/rules",
         "data/stories", "actions/handoff.py", "tests/test_stories.yml"]


def domain(bot: Path) -> dict:
    return yaml.safe_load((bot / "domain.yml").read_text())


def names(section) -> set[str]:
    if isinstance(section, dict):
        return set(section)
    return {next(iter(item)) if isinstance(item, dict) else item for item in section or []}


def test_there_are_bots():
    assert {bot.name for bot in BOTS} >= {"helpdesk", "financial"}


@pytest.mark.parametrize("bot", BOTS, ids=lambda bot: bot.name)
def test_bot_has_the_common_shape(bot: Path):
    missing = [part for part in SHAPE if not (bot / part).exists()]
    assert not missing, f"{bot.name} lacks {missing}"


@pytest.mark.parametrize("bot", BOTS, ids=lambda bot: bot.name)
def test_bot_declares_the_handoff_contract(bot: Path):
    data = domain(bot)
    assert HANDOFF_INTENTS <= names(data["intents"])
    assert "handoff_to" in names(data["entities"]) and "handoff_to" in data["slots"]
    assert HANDOFF_ACTIONS <= set(data["actions"])
    assert HANDOFF_RESPONSES <= set(data["responses"])
    for response in TITLED_RESPONSES:
        assert all("{host_title}" in variant["text"] for variant in data["responses"][response]), response


@pytest.mark.parametrize("bot", BOTS, ids=lambda bot: bot.name)
def test_bot_imports_the_shared_handoff_actions_instead_of_copying_them(bot: Path):
    code = [
        line for line in (bot / "actions" / "handoff.py").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert code == ["from handoff.actions import *  # noqa: F401,F403"]


def test_every_local_host_in_the_config_has_its_bot():
    config = load_config(REPO_ROOT / "handoff_config.yml")
    local = [h for h in config.hosts if h.kind == "rasa" and h.hostname in ("localhost", "127.0.0.1")]
    assert local
    for host in local:
        assert (REPO_ROOT / "bots" / host.id).is_dir(), f"{host.id} has no folder under bots/"
