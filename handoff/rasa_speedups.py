"""Speed-ups of Rasa's own per-turn work, installed in the Rasa server when it starts.

- Rasa 3.6 checks every action server response with ``jsonschema.validate``, which
  first checks the large events schema against its meta-schema and then builds a
  new validator: about half of a busy bot's CPU. It is replaced by a validator
  built once for the same schema, raising the same error (the best match, with
  Rasa's hint appended). Even built once, the schema's ``oneOf`` tries every one
  of its 23 event types on every event (7 % of a Financial bot turn in one
  profile); each event is first checked against its own type's branch only, and
  only a response that fails that goes through the whole schema, for its error.
- Reading an event back from its JSON looks its class up by walking every
  subclass of ``Event`` again; the classes found are remembered by type name.
- The RulePolicy matches its rules against every dialogue state of the
  conversation, oldest included, although a rule only looks as far back as it is
  long; the matching stops once every rule still in the running is shorter than
  the states looked at, which is where Rasa's own check starts to let them all
  pass. A turn's rule matching then costs the same early and late in a conversation.
  Each rule is also read once into the checks Rasa's ``_is_rule_applicable`` makes
  (Rasa reverses its states and turns lists into tuples again at every check); a
  policy that changes any of those checks keeps Rasa's matching.
- A message that names its intent (``/intent{"entity": "value"}``: buttons, the
  handoff trigger and the arrival) runs through the whole NLU pipeline, whose
  every result the pipeline's last step, RegexMessageHandler, then throws away
  for the intent and entities the message names. Such a message is unpacked the
  same way without the pipeline, with the same parse data (the pipeline was 29 %
  of the handling of an arrival at the Financial bot, in one profile). A message
  that does not unpack (unknown intent, bad syntax), and a pipeline that does not
  end in RegexMessageHandler, still run the pipeline.
- LogisticRegressionClassifier builds its input from every sparse feature of the
  message, the per-token ones too (which it drops), copying each and stacking them
  through scipy's general block routines: 3 ms of a 12 ms pipeline. Only the
  sentence features are joined now, side by side, into the same matrix.
- Every message asks whether the domain is empty (to skip a check of the parsed
  intent and entities), which Rasa answers by building an empty domain and
  comparing the two: 2 % of a Financial bot turn in one profile. The empty
  domain is built once.
- Rasa opens a new HTTP session, so a new connection (a name lookup in a thread
  and a handshake), for every call to the action server: 2 ms of the bot's CPU a
  call against 0.5 ms on an open connection. Each endpoint now keeps one session
  per event loop, its idle connections closed before the action server's own
  keep-alive ends; the REST channel closes them when the server stops.
- Every parse and every prediction runs the model's graph through dask, which
  works out again, per call, which nodes the targets need and in what order,
  and schedules each node as a task: about a tenth of a bot's CPU per turn, in
  one profile, outside the nodes themselves. The plan (the nodes the targets
  need, each after the nodes it needs) is now worked out once per set of
  targets and the nodes are called in that order, each with the outputs it
  needs, as dask would call them.

The bots' REST channel (``handoff.channel``) and tracker store
(``handoff.rasa_stores``) call ``install`` when Rasa imports them, so both
``rasa run`` and ``rasa shell`` get it.
"""
from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Text, Tuple, Type

import aiohttp
import numpy as np
import scipy.sparse
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import UserMessage
from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.processor import MessageProcessor
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphNode
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
from rasa.shared.constants import DOCS_BASE_URL, INTENT_MESSAGE_PREFIX
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.endpoints import EndpointConfig

# Rasa's own methods, for the tests that compare against them.
resolve_event_class_by_walking = Event.resolve_by_type
get_possible_keys_by_rasa = RulePolicy._get_possible_keys
domain_is_empty_by_rasa = Domain.is_empty
parse_message_with_graph_by_rasa = MessageProcessor._parse_message_with_graph
create_x_by_rasa = LogisticRegressionClassifier._create_X
session_by_rasa = EndpointConfig.session
run_graph_by_rasa = DaskGraphRunner.run
event_classes: Dict[Text, Type[Event]] = {}


@functools.lru_cache(maxsize=None)
def action_result_validator() -> Validator:
    """Return the validator of action server responses, checked and built on first use."""
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@dataclass(frozen=True)
class EventDispatch:
    """The response schema with its events unchecked, and a validator per event type."""

    outline: Validator
    by_type: Dict[Text, Validator]


@functools.lru_cache(maxsize=None)
def event_dispatch() -> Optional[EventDispatch]:
    """Split the response schema by event type; None if its ``oneOf`` is not one branch per type.

    An event passes ``oneOf`` exactly when it passes its own type's branch: every
    branch requires a different constant ``event``, which every event must have.
    """
    schema = RemoteAction.action_response_format_spec()
    events = schema.get("properties", {}).get("events", {})
    items = events.get("items", {})
    branches = items.get("oneOf", [])
    types = [branch.get("properties", {}).get("event", {}).get("const") for branch in branches]
    one_per_type = None not in types and len(set(types)) == len(types)
    if not branches or "event" not in items.get("required", []) or not one_per_type:
        return None
    cls = validator_for(schema)
    common = {key: value for key, value in items.items() if key != "oneOf"}
    outline = {**schema, "properties": {**schema["properties"], "events": {**events, "items": {}}}}
    return EventDispatch(
        cls(outline), {name: cls({"allOf": [common, branch]}) for name, branch in zip(types, branches)}
    )


def passes_by_type(result: Any) -> bool:
    """Whether ``result`` passes the response schema, checking each event against its type only."""
    dispatch = event_dispatch()
    if dispatch is None or not dispatch.outline.is_valid(result):
        return False
    for event in result.get("events", []):
        name = event.get("event") if isinstance(event, dict) else None
        validator = dispatch.by_type.get(name) if isinstance(name, str) else None
        if validator is None or not validator.is_valid(event):
            return False
    return True


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """Check an action server response as ``RemoteAction._validate_action_result`` does."""
    if passes_by_type(result):
        return True
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


# What one state of a rule asks of a conversation's state: (kind of sub-state, feature,
# the value it must have, or UNSET when it must have none).
Check = Tuple[Text, Text, Any]
UNSET = object()


@dataclass(frozen=True)
class RuleState:
    """One state of a rule, read once into the checks ``RulePolicy._does_rule_match_state`` makes."""

    has_previous_action: bool
    checks: Tuple[Check, ...]

    def applies_to(self, conversation_state: State, conversation_has_previous_action: bool) -> bool:
        """Return what ``RulePolicy._is_rule_applicable`` returns for this state of the rule."""
        if not self.has_previous_action or not conversation_has_previous_action:
            # Both are conversation starts (a match), or only one is (no match).
            return self.has_previous_action == conversation_has_previous_action
        for kind, feature, expected in self.checks:
            value = conversation_state.get(kind, {}).get(feature)
            if expected is UNSET:
                if value and value != SHOULD_NOT_BE_SET:
                    return False
            elif value != expected:
                return False
        return True


@dataclass(frozen=True)
class CompiledRule:
    key: Text
    reversed_states: Tuple[RuleState, ...]  # the newest state first, as matching goes back in time


def rule_state(state: State) -> RuleState:
    checks: List[Check] = []
    for kind, sub_state in state.items():
        for feature, stored in sub_state.items():
            # JSON turned the tuples of the states into lists.
            value = tuple(stored) if isinstance(stored, list) else stored
            if value == SHOULD_NOT_BE_SET:
                checks.append((kind, feature, UNSET))
            elif value:
                checks.append((kind, feature, value))
    return RuleState(bool(state.get(PREVIOUS_ACTION)), tuple(checks))


@functools.lru_cache(maxsize=8192)
def compiled_rule(rule_key: Text) -> CompiledRule:
    """Return a rule (its JSON key in the policy's lookup) read into checks, once per key."""
    states = RulePolicy._rule_key_to_state(rule_key)
    return CompiledRule(rule_key, tuple(rule_state(state) for state in reversed(states)))


# What Rasa's matching calls on the policy, so what a subclass may change about it.
RULE_CHECKS = ("_is_rule_applicable", "_does_rule_match_state", "_rule_key_to_state")


def matches_as_rasa(policy_class: type) -> bool:
    """Tell whether a policy class matches rules with RulePolicy's own checks (what ``RuleState`` copies)."""
    return all(getattr(policy_class, name) is getattr(RulePolicy, name) for name in RULE_CHECKS)


def get_possible_keys(self: RulePolicy, lookup: Dict[Text, Text], states: List[State]) -> Set[Text]:
    """Return the rules that match ``states``, as ``RulePolicy._get_possible_keys`` does."""
    if not matches_as_rasa(type(self)):
        return get_possible_keys_by_rasa(self, lookup, states)  # a subclass matches its own way
    rules = [compiled_rule(key) for key in lookup]
    for turn_index, state in enumerate(reversed(states)):
        if all(turn_index >= len(rule.reversed_states) for rule in rules):
            break  # each remaining rule has matched all of its states
        has_previous_action = bool(state.get(PREVIOUS_ACTION))
        rules = [
            rule for rule in rules
            if turn_index >= len(rule.reversed_states)
            or rule.reversed_states[turn_index].applies_to(state, has_previous_action)
        ]
    return {rule.key for rule in rules}


@functools.lru_cache(maxsize=None)
def empty_domain_data() -> Dict[Text, Any]:
    """Return what an empty domain serialises to (compared with, never handed out)."""
    return Domain.empty().as_dict()


def domain_is_empty(self: Domain) -> bool:
    """Return ``Domain.is_empty``'s answer without building an empty domain each time."""
    return self.as_dict() == empty_domain_data()


def nlu_ends_in_regex_handler(processor: MessageProcessor) -> bool:
    """Return whether the model's NLU result is RegexMessageHandler's (Rasa's default recipe)."""
    node = processor.model_metadata.predict_schema.nodes.get(processor.model_metadata.nlu_target)
    return node is not None and node.uses is RegexMessageHandler


def names_known_intent(processor: MessageProcessor, text: Text) -> bool:
    """Return whether ``text`` is ``/intent...`` naming an intent of the domain (checked without warnings)."""
    if not text.lstrip().startswith(INTENT_MESSAGE_PREFIX):
        return False
    match = YAMLStoryReader._regex_message_pattern().match(text.strip())
    return match is not None and match.group(INTENT_NAME_KEY).strip() in processor.domain.intents


def parse_message_with_graph(
    self: MessageProcessor, message: UserMessage, tracker: DialogueStateTracker,
    only_output_properties: bool = True,
) -> Dict[Text, Any]:
    """Return the parse data ``MessageProcessor._parse_message_with_graph`` returns, for less."""
    text = message.text or ""
    if names_known_intent(self, text) and nlu_ends_in_regex_handler(self):
        named = Message(data={TEXT: text})
        unpacked = YAMLStoryReader.unpack_regex_message(named, self.domain, RegexMessageHandler.__name__)
        if unpacked is not named:
            parse_data: Dict[Text, Any] = {
                TEXT: "", INTENT: {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, ENTITIES: [],
            }
            parse_data.update(unpacked.as_dict(only_output_properties=only_output_properties))
            return parse_data
    return parse_message_with_graph_by_rasa(self, message, tracker, only_output_properties)


def logistic_regression_input(
    self: LogisticRegressionClassifier, messages: List[Message]
) -> scipy.sparse.csr_matrix:
    """Return the matrix ``LogisticRegressionClassifier._create_X`` builds (one row a message)."""
    rows, columns, values = [], [], []
    width = None
    for row, message in enumerate(messages):
        _, sentence = message._filter_sparse_features(TEXT, [])
        if not sentence or message.get_dense_features(TEXT)[1] is not None:
            return create_x_by_rasa(self, messages)  # dense features are joined in too: Rasa's way
        offset = 0
        for features in sentence:
            block = features.features.tocoo()
            rows.append(np.full(block.nnz, row, dtype=block.row.dtype))
            columns.append(block.col + offset)
            values.append(block.data)
            offset += block.shape[1]
        if width not in (None, offset):
            return create_x_by_rasa(self, messages)  # Rasa refuses rows of different widths
        width = offset
    if width is None:
        return create_x_by_rasa(self, messages)
    coordinates = (np.concatenate(rows), np.concatenate(columns))
    return scipy.sparse.csr_matrix((np.concatenate(values), coordinates), shape=(len(messages), width))


# Below the 5 s for which Sanic (the action server) keeps an idle connection, so the
# server never closes one just as it is taken for the next call.
KEEP_ALIVE_SECONDS = 2.0
KEPT_SESSION = "handoff_kept_session"
# Each kept session and the event loop it belongs to.
kept_sessions: "weakref.WeakKeyDictionary[aiohttp.ClientSession, asyncio.AbstractEventLoop]" = (
    weakref.WeakKeyDictionary()
)


class KeptSession:
    """What ``EndpointConfig.session`` returns: ``async with`` gives the open session and keeps it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, *_: Any) -> None:
        return None


def kept_session(self: EndpointConfig) -> Any:
    """Return the endpoint's session for this event loop, made as Rasa makes it on first use."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return session_by_rasa(self)  # outside a loop, a session of its own as before
    kept = getattr(self, KEPT_SESSION, None)
    if kept is None or kept[0] is not loop or kept[1].closed:
        auth = self.basic_auth and aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
        session = aiohttp.ClientSession(
            headers=self.headers, auth=auth or None,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEP_ALIVE_SECONDS),
        )
        kept = (loop, session)
        setattr(self, KEPT_SESSION, kept)
        kept_sessions[session] = loop
    return KeptSession(kept[1])


async def close_kept_sessions() -> None:
    """Close every kept session of this event loop (a server that stops)."""
    loop = asyncio.get_running_loop()
    for session, its_loop in list(kept_sessions.items()):
        if its_loop is loop and not session.closed:
            await session.close()


@dataclass(frozen=True)
class GraphStep:
    """One node of a graph run: its name, the node, and the names whose outputs it is called with."""

    name: Text
    node: GraphNode
    needs: Tuple[Text, ...]


# Where a runner keeps its plans, one per tuple of targets.
GRAPH_PLANS = "_handoff_graph_plans"


def graph_plan(runner: DaskGraphRunner, targets: Tuple[Text, ...]) -> List[GraphStep]:
    """Return the nodes ``targets`` need, each after every node it needs (worked out once per targets)."""
    plans: Dict[Tuple[Text, ...], List[GraphStep]] = runner.__dict__.setdefault(GRAPH_PLANS, {})
    plan = plans.get(targets)
    if plan is None:
        nodes = runner._graph_schema.minimal_graph_schema(list(targets)).nodes
        order: List[Text] = []

        def place(name: Text) -> None:
            if name in order or name not in nodes:
                return
            for need in nodes[name].needs.values():
                place(need)
            order.append(name)

        for name in nodes:
            place(name)
        plan = plans[targets] = [
            GraphStep(name, runner._instantiated_nodes[name], tuple(nodes[name].needs.values()))
            for name in order
        ]
    return plan


def run_graph_in_order(
    self: DaskGraphRunner, inputs: Optional[Dict[Text, Any]] = None, targets: Optional[List[Text]] = None
) -> Dict[Text, Any]:
    """Run the graph as Rasa's DaskGraphRunner does, without dask: the same calls, results and errors.

    As in dask's graph, an input is the pair (name, value) a node would output and
    takes the place of a node of that name, and a need that is neither a node nor
    an input is passed on as the name itself.
    """
    run_targets = targets if targets else self._graph_schema.target_names
    plan = graph_plan(self, tuple(run_targets))
    outputs: Dict[Text, Any] = {}
    for input_name, input_value in (inputs or {}).items():
        if isinstance(input_value, str) and (
            input_value in outputs or any(step.name == input_value for step in plan)
        ):
            raise GraphRunError(
                f"The graph input value '{input_value}' is also the name of a node or an input: "
                "pass inputs whose values name nothing in the graph."
            )
        outputs[input_name] = (input_name, input_value)
    try:
        for step in plan:
            if step.name not in outputs:
                outputs[step.name] = step.node(*[outputs.get(need, need) for need in step.needs])
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e
    return dict(outputs[target] for target in run_targets)


def install() -> None:
    """Put the speed-ups in place (again: they replace Rasa's methods, not wrap them)."""
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    Event.resolve_by_type = staticmethod(resolve_event_class)  # type: ignore[assignment]
    RulePolicy._get_possible_keys = get_possible_keys  # type: ignore[method-assign]
    Domain.is_empty = domain_is_empty  # type: ignore[method-assign]
    MessageProcessor._parse_message_with_graph = parse_message_with_graph  # type: ignore[method-assign]
    LogisticRegressionClassifier._create_X = logistic_regression_input  # type: ignore[method-assign]
    EndpointConfig.session = kept_session  # type: ignore[method-assign]
    DaskGraphRunner.run = run_graph_in_order  # type: ignore[method-assign]
