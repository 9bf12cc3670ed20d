"""Every bot carries the handoff contract and the same shape; its test data stays out of its training data."""
from __future__ import annotations

import re
from collections import Counter
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

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


# --- test data stays apart from training data --------------------------------------------------

def _load_script(name: str) -> ModuleType:
    path = REPO_ROOT / "scripts" / name
    loader = SourceFileLoader(name.replace("-", "_"), str(path))
    module = ModuleType(loader.name)
    module.__file__ = str(path)
    loader.exec_module(module)
    return module


# The same reader `make test-nlu` uses for annotated examples.
_heldout = _load_script("nlu-heldout")


def normalised(text: str) -> str:
    """Return ``text`` as compared for overlap: no annotations, case, spacing or end punctuation."""
    plain, _ = _heldout.read_example(text)
    return re.sub(r"\s+", " ", plain.lower()).strip(" ?!.,")


def training_texts(bot: Path) -> set[str]:
    return {
        normalised(text)
        for path in sorted((bot / "data" / "nlu").glob("*.yml"))
        for _intent, text, _entities in _heldout.nlu_examples(path)
    }


def story_user_texts(bot: Path) -> list[str]:
    stories = yaml.safe_load((bot / "tests" / "test_stories.yml").read_text())["stories"]
    texts = [str(step["user"]) for story in stories for step in story["steps"] if "user" in step]
    # Button payloads (/intent{...}) are not words anyone types.
    return [text for text in texts if not text.strip().startswith("/")]


@pytest.mark.parametrize("bot", BOTS, ids=lambda bot: bot.name)
def test_conversation_tests_use_no_sentence_from_the_training_data(bot: Path):
    texts = story_user_texts(bot)
    assert len(texts) > 50
    shared = sorted({normalised(text) for text in texts} & training_texts(bot))
    assert shared == []


@pytest.mark.parametrize("bot", BOTS, ids=lambda bot: bot.name)
def test_heldout_nlu_examples_are_not_in_the_training_data(bot: Path):
    heldout = [text for _intent, text, _ in _heldout.nlu_examples(bot / "tests" / "nlu_heldout.yml")]
    assert len(heldout) >= 200
    shared = sorted({normalised(text) for text in heldout} & training_texts(bot))
    assert shared == []


@pytest.mark.parametrize("bot", BOTS, ids=lambda bot: bot.name)
def test_heldout_nlu_has_enough_examples_of_every_intent(bot: Path):
    counts = Counter(intent for intent, _, _ in _heldout.nlu_examples(bot / "tests" / "nlu_heldout.yml"))
    handoff = sum(n for intent, n in counts.items() if _heldout.is_handoff_request(intent))
    assert handoff >= 30
    trained = names(domain(bot)["intents"]) - {"nlu_fallback"}
    assert {intent: counts[intent] for intent in trained if counts[intent] < 10} == {}
