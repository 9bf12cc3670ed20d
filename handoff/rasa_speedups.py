"""Speed-ups of Rasa's own per-turn work, installed in the Rasa server when it starts.

- Rasa 3.6 checks every action server response with ``jsonschema.validate``, which
  first checks the large events schema against its meta-schema and then builds a
  new validator: about half of a busy bot's CPU. It is replaced by a validator
  built once for the same schema, raising the same error (the best match, with
  Rasa's hint appended).
- Reading an event back from its JSON looks its class up by walking every
  subclass of ``Event`` again; the classes found are remembered by type name.
- The RulePolicy matches its rules against every dialogue state of the
  conversation, oldest included, although a rule only looks as far back as it is
  long; the matching stops once every rule still in the running is shorter than
  the states looked at, which is where Rasa's own check starts to let them all
  pass. A turn's rule matching then costs the same early and late in a conversation.

The bots' REST channel (``handoff.channel``) and tracker store
(``handoff.rasa_stores``) call ``install`` when Rasa imports them, so both
``rasa run`` and ``rasa shell`` get it.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Set, Text, Type

from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.domain import State
from rasa.shared.core.events import Event

# Rasa's own methods, for the tests that compare against them.
resolve_event_class_by_walking = Event.resolve_by_type
get_possible_keys_by_rasa = RulePolicy._get_possible_keys
event_classes: Dict[Text, Type[Event]] = {}


@functools.lru_cache(maxsize=None)
def action_result_validator() -> Validator:
    """Return the validator of action server responses, checked and built on first use."""
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """Check an action server response as ``RemoteAction._validate_action_result`` does."""
    error = best_match(action_result_validator().iter_errors(result))
    if error is None:
        return True
    # The same hint Rasa appends, so a refused response reads as it always did.
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def resolve_event_class(type_name: Text, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
    """Return the Event class of a type name as ``Event.resolve_by_type`` does, remembered."""
    found = event_classes.get(type_name)
    if found is None:
        found = resolve_event_class_by_walking(type_name, default)
        if found is not None and found is not default:
            event_classes[type_name] = found
    return found


def rule_length(rule_key: Text) -> int:
    """Return how many dialogue states a rule spans."""
    return len(RulePolicy._rule_key_to_state(rule_key))


def get_possible_keys(self: RulePolicy, lookup: Dict[Text, Text], states: List[State]) -> Set[Text]:
    """Return the rules that match ``states``, as ``RulePolicy._get_possible_keys`` does."""
    possible_keys = set(lookup.keys())
    for turn_index, state in enumerate(reversed(states)):
        if all(turn_index >= rule_length(key) for key in possible_keys):
            break  # each remaining rule has matched all of its states
        possible_keys = {key for key in possible_keys if self._is_rule_applicable(key, turn_index, state)}
    return possible_keys


def install() -> None:
    """Put the speed-ups in place (again: they replace Rasa's methods, not wrap them)."""
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    Event.resolve_by_type = staticmethod(resolve_event_class)  # type: ignore[assignment]
    RulePolicy._get_possible_keys = get_possible_keys  # type: ignore[method-assign]
