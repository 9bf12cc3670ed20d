"""Rasa's per-turn work made cheaper: the same answers and the same refusals as Rasa's own."""
import json
import tarfile
import warnings
from pathlib import Path
from typing import Any, Dict

import jsonschema
import pytest

with warnings.catch_warnings():
    # Importing Rasa's core imports TensorFlow, whose own imports warn.
    warnings.simplefilter("ignore", DeprecationWarning)
    from long_conversations import BOTS, BOTS_DIR, long_conversation
    from rasa.core.actions.action import RemoteAction
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.constants import DOCS_BASE_URL
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event, SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.utils.common import all_subclasses

    from handoff import rasa_speedups

VALID = {
    "events": [
        {"event": "slot", "timestamp": None, "name": "email", "value": "kim@example.com"},
        {"event": "active_loop", "timestamp": None, "name": None},
        {"event": "followup", "timestamp": None, "name": "utter_greet"},
    ],
    "responses": [{"response": "utter_ask_email", "buttons": []}, {"text": "hello"}],
}
INVALID = {
    "events is not a list": {"events": {"event": "slot", "name": "email"}},
    "an event without its type": {"events": [{"name": "email", "value": "x"}]},
    "an unknown event type": {"events": [{"event": "teleport", "timestamp": None}]},
    "a slot event without a name": {"events": [{"event": "slot", "value": 1}]},
    "responses are not objects": {"events": [], "responses": ["hello"]},
}


def rasa_check(result: Dict[str, Any]) -> jsonschema.ValidationError:
    """Return the error Rasa 3.6's own check raises for ``result`` (what it replaces)."""
    with pytest.raises(jsonschema.ValidationError) as raised:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
    return raised.value


def test_valid_action_result_is_accepted():
    assert rasa_speedups.validate_action_result(RemoteAction("action_x", None), VALID) is True


@pytest.mark.parametrize("result", INVALID.values(), ids=list(INVALID))
def test_invalid_action_result_is_refused_with_rasas_error(result):
    expected = rasa_check(result)
    with pytest.raises(jsonschema.ValidationError) as raised:
        rasa_speedups.validate_action_result(RemoteAction("action_x", None), result)
    assert raised.value.message == expected.message + (
        ". Failed to validate Action server response from API, make sure your response from the "
        "Action endpoint is valid. For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    assert list(raised.value.path) == list(expected.path)
    assert raised.value.validator == expected.validator


def test_installed_check_is_what_remote_actions_call():
    rasa_speedups.install()
    action = RemoteAction("action_x", None)
    with pytest.raises(jsonschema.ValidationError):
        action._validate_action_result(INVALID["an unknown event type"])
    assert action._validate_action_result(VALID) is True


def test_validator_is_built_once():
    assert rasa_speedups.action_result_validator() is rasa_speedups.action_result_validator()


@pytest.mark.parametrize("type_name", sorted({cls.type_name for cls in all_subclasses(Event)}))
def test_remembered_event_class_is_the_one_rasa_finds(type_name):
    expected = rasa_speedups.resolve_event_class_by_walking(type_name)
    assert rasa_speedups.resolve_event_class(type_name) is expected
    assert rasa_speedups.resolve_event_class(type_name) is expected


def test_unknown_event_type_is_still_refused_or_defaulted():
    with pytest.raises(ValueError, match="Unknown event name 'teleport'"):
        rasa_speedups.resolve_event_class("teleport")
    assert rasa_speedups.resolve_event_class("teleport", SlotSet) is SlotSet
    assert "teleport" not in rasa_speedups.event_classes


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("bot", BOTS)
def test_rule_matching_finds_the_rules_rasa_finds(bot):
    model = sorted((BOTS_DIR / bot / "models").glob("*.tar.gz"))[-1]
    with tarfile.open(model) as archive:
        member = next(m for m in archive.getmembers() if Path(m.name).name == "rule_policy.json")
        lookup = json.load(archive.extractfile(member))["lookup"]
    domain = Domain.load(str(BOTS_DIR / bot / "domain.yml"))
    tracker = DialogueStateTracker.from_events("x", long_conversation(bot, domain), domain.slots)
    states = domain.states_for_tracker_history(tracker)
    policy = RulePolicy.__new__(RulePolicy)  # matching needs none of a trained policy's state
    # Every short history, then longer ones at a stride (Rasa's own matching is slow on them).
    ends = list(range(1, 12)) + list(range(12, len(states) + 1, 7))
    for rules in (lookup["rules"], lookup["rules_for_loop_unhappy_path"]):
        for end in ends:
            expected = rasa_speedups.get_possible_keys_by_rasa(policy, rules, states[:end])
            assert rasa_speedups.get_possible_keys(policy, rules, states[:end]) == expected
