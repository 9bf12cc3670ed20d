"""Rasa's per-turn work made cheaper: the same answers and the same refusals as Rasa's own."""
import asyncio
import copy
import dataclasses
import json
import tarfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import numpy as np
import pytest
from aiohttp import web

with warnings.catch_warnings():
    # Importing Rasa's core imports TensorFlow, whose own imports warn.
    warnings.simplefilter("ignore", DeprecationWarning)
    from long_conversations import BOTS, BOTS_DIR, long_conversation
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.core.processor import MessageProcessor
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
    from rasa.shared.constants import DOCS_BASE_URL
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
    from rasa.shared.nlu.training_data.features import Features
    from rasa.shared.utils.common import all_subclasses
    from rasa.utils.endpoints import EndpointConfig

    from handoff import rasa_speedups
    from handoff.payload import arrival_message, trigger_message

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


def spoiled(event: Dict[str, Any]) -> List[Any]:
    """Return ``event`` with each key dropped, and with each value swapped for each other JSON kind."""
    kinds = [None, True, 3, 2.5, "text", [1], {"a": 1}]
    out: List[Any] = [[], "slot", {**event, "extra": 1}]
    for key in event:
        out.append({k: v for k, v in event.items() if k != key})
        out += [{**event, key: kind} for kind in kinds if kind != event[key]]
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_each_event_is_checked_against_its_type_as_the_whole_schema_would():
    schema = RemoteAction.action_response_format_spec()
    whole = jsonschema.validators.validator_for(schema)(schema)
    domain = Domain.load(str(BOTS_DIR / "financial" / "domain.yml"))
    # One event of each shape (type, keys and kinds of value) the conversation tests log.
    shapes = {}
    for event in [event.as_dict() for event in long_conversation("financial", domain)] + VALID["events"]:
        shapes.setdefault(tuple((key, type(value).__name__) for key, value in sorted(event.items())), event)
    events = list(shapes.values())
    assert len({event["event"] for event in events}) >= 6
    outcomes = Counter()
    for event in events:
        for candidate in [event, *spoiled(event)]:
            for result in ({"events": [candidate]}, {"events": [event, candidate], "responses": []}):
                passes = rasa_speedups.passes_by_type(result)
                assert passes == whole.is_valid(result), result
                outcomes[passes] += 1
    for result in [*INVALID.values(), VALID, {}, [], {"events": None}, {"responses": [{"text": 1}]}]:
        assert rasa_speedups.passes_by_type(result) == whole.is_valid(result), result
    # Both answers were put to the test, many times each.
    assert outcomes[True] > 100 and outcomes[False] > 100


def test_events_are_split_by_every_type_of_rasas_schema():
    branches = RemoteAction.action_response_format_spec()["properties"]["events"]["items"]["oneOf"]
    dispatch = rasa_speedups.event_dispatch()
    assert sorted(dispatch.by_type) == sorted(branch["properties"]["event"]["const"] for branch in branches)
    assert len(dispatch.by_type) == 23


def without_one_of(items: Dict[str, Any]) -> None:
    del items["oneOf"]


def with_a_type_twice(items: Dict[str, Any]) -> None:
    items["oneOf"].append(items["oneOf"][0])


def without_event_required(items: Dict[str, Any]) -> None:
    items["required"] = [key for key in items["required"] if key != "event"]


@pytest.mark.parametrize("change", [without_one_of, with_a_type_twice, without_event_required])
def test_a_schema_not_one_branch_per_event_type_is_checked_whole(monkeypatch, change):
    # Another Rasa version's schema, where checking an event by its type alone could disagree.
    schema = copy.deepcopy(RemoteAction.action_response_format_spec())
    change(schema["properties"]["events"]["items"])
    monkeypatch.setattr(RemoteAction, "action_response_format_spec", staticmethod(lambda: schema))
    rasa_speedups.event_dispatch.cache_clear()
    rasa_speedups.action_result_validator.cache_clear()
    try:
        assert rasa_speedups.event_dispatch() is None
        whole = jsonschema.validators.validator_for(schema)(schema)
        verdicts = []
        for result in [VALID, *INVALID.values()]:
            assert rasa_speedups.passes_by_type(result) is False
            try:
                accepted = rasa_speedups.validate_action_result(RemoteAction("action_x", None), result)
            except jsonschema.ValidationError:
                accepted = False
            assert accepted == whole.is_valid(result), result
            verdicts.append(accepted)
        assert False in verdicts and verdicts[1:].count(False) >= 3
    finally:
        rasa_speedups.event_dispatch.cache_clear()
        rasa_speedups.action_result_validator.cache_clear()


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


class NoRuleApplies(RulePolicy):
    def _is_rule_applicable(self, rule_key, turn_index, conversation_state):
        return False


class NoStateMatches(RulePolicy):
    @staticmethod
    def _does_rule_match_state(rule_state, conversation_state):
        return False


class EveryRuleIsEmpty(RulePolicy):
    @staticmethod
    def _rule_key_to_state(rule_key):
        return []  # a rule of no states matches anything


@pytest.mark.parametrize("policy_class, matched", [
    (RulePolicy, "greet"), (NoRuleApplies, None), (NoStateMatches, None), (EveryRuleIsEmpty, "both"),
])
def test_a_policy_with_its_own_rule_checks_keeps_them(policy_class, matched):
    greet, goodbye = (
        json.dumps([{"prev_action": {"action_name": "action_listen"}, "user": {"intent": intent}}])
        for intent in ("greet", "goodbye")
    )
    states = [{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "greet"}}]
    lookup = {greet: "utter_greet", goodbye: "utter_goodbye"}
    expected = {"greet": {greet}, None: set(), "both": {greet, goodbye}}[matched]
    policy = policy_class.__new__(policy_class)
    assert rasa_speedups.get_possible_keys(policy, lookup, states) == expected
    assert rasa_speedups.get_possible_keys_by_rasa(policy, lookup, states) == expected


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_an_empty_domain_is_told_from_the_bots_domains_without_building_one_each_time(monkeypatch):
    bots = [Domain.load(str(BOTS_DIR / bot / "domain.yml")) for bot in BOTS]
    domains = [Domain.empty(), Domain.from_dict({}), *bots]
    expected = [rasa_speedups.domain_is_empty_by_rasa(domain) for domain in domains]
    assert expected == [True, True] + [False] * len(BOTS)
    rasa_speedups.empty_domain_data()  # built on first use

    def built():
        raise AssertionError("an empty domain was built again")

    monkeypatch.setattr(Domain, "empty", staticmethod(built))
    assert [rasa_speedups.domain_is_empty(domain) for domain in domains] == expected
    assert Domain.is_empty is rasa_speedups.domain_is_empty  # what the processor calls


# What people and hosts send that names a known intent: buttons (with a confidence, with
# entities, with entities the domain lacks, with a broken tail), the handoff's own messages.
NAMED = [
    "/greet", "/affirm@0.7", '/inform{"email": "kim@example.com"}', '/greet{"colour": "blue"}',
    '/greet{"email": ', "  /greet  ", trigger_message("financial"), arrival_message("http://localhost:5005"),
]
# What the pipeline still reads: plain text, an unknown intent, a bare prefix.
READ = ["hi there", "/no_such_intent", "/", "I paid /greet twice"]


@pytest.fixture(scope="module", params=BOTS)
def agent(request: pytest.FixtureRequest) -> Agent:
    models = sorted((BOTS_DIR / request.param / "models").glob("*.tar.gz"))
    assert models, f"bots/{request.param}/models holds no trained model: run `make train`"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Agent.load(str(models[-1]))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("only_output_properties", [True, False])
def test_messages_naming_an_intent_parse_as_rasa_parses_them(agent, only_output_properties):
    processor = agent.processor
    assert rasa_speedups.nlu_ends_in_regex_handler(processor)
    tracker = DialogueStateTracker.from_events("parse", [])
    for text in NAMED + READ:
        message = UserMessage(text, sender_id="parse")
        args = (processor, message, tracker, only_output_properties)
        expected = rasa_speedups.parse_message_with_graph_by_rasa(*args)
        got = rasa_speedups.parse_message_with_graph(*args)
        assert got == expected, text


def parse_counting_pipeline_runs(processor: MessageProcessor, monkeypatch) -> "tuple[List[Dict], List[str]]":
    """Parse every text of NAMED + READ; return the parse data and the texts the NLU graph was run for."""
    read = []
    run = processor.graph_runner.run

    def counted_run(**kwargs):
        read.append(kwargs["inputs"][PLACEHOLDER_MESSAGE][0].text)
        return run(**kwargs)

    monkeypatch.setattr(processor.graph_runner, "run", counted_run)
    tracker = DialogueStateTracker.from_events("parse", [])
    parsed = [
        rasa_speedups.parse_message_with_graph(processor, UserMessage(text), tracker) for text in NAMED + READ
    ]
    return parsed, read


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_only_messages_naming_a_known_intent_skip_the_pipeline(agent, monkeypatch):
    parsed, read = parse_counting_pipeline_runs(agent.processor, monkeypatch)
    assert [data["text"] for data in parsed] == [text.strip() for text in NAMED] + READ
    assert read == READ


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_pipeline_not_ending_in_regex_message_handler_reads_every_message(agent, monkeypatch):
    processor = agent.processor
    nodes = processor.model_metadata.predict_schema.nodes
    target = processor.model_metadata.nlu_target
    # Another last step might change what a named intent parses to, so nothing may skip it.
    monkeypatch.setitem(nodes, target, dataclasses.replace(nodes[target], uses=LogisticRegressionClassifier))
    assert not rasa_speedups.nlu_ends_in_regex_handler(processor)
    _, read = parse_counting_pipeline_runs(processor, monkeypatch)
    # Rasa hands the pipeline each text stripped.
    assert read == [text.strip() for text in NAMED + READ]


def test_installed_parse_is_what_the_processor_calls():
    rasa_speedups.install()
    assert MessageProcessor._parse_message_with_graph is rasa_speedups.parse_message_with_graph


# pykwalify, reading the domain for the conversation tests, loads modules the deprecated way.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_the_graph_run_in_order_parses_and_predicts_what_dask_does(agent, request):
    bot = request.node.callspec.params["agent"]
    processor = agent.processor
    nlu_target, core_target = processor.model_metadata.nlu_target, processor.model_metadata.core_target

    def both(inputs: Dict[str, Any], target: str) -> "tuple[Any, Any]":
        by_rasa = rasa_speedups.run_graph_by_rasa(processor.graph_runner, inputs=inputs, targets=[target])
        in_order = rasa_speedups.run_graph_in_order(processor.graph_runner, inputs=inputs, targets=[target])
        assert list(in_order) == list(by_rasa) == [target]
        return by_rasa[target], in_order[target]

    for text in NAMED + READ + CLASSIFIED:
        by_rasa, in_order = both({PLACEHOLDER_MESSAGE: [UserMessage(text)]}, nlu_target)
        assert [message.as_dict() for message in in_order] == [message.as_dict() for message in by_rasa], text
    # A prediction after every message and every action of all the bot's conversation tests.
    tracker = DialogueStateTracker.from_events(bot, [], agent.domain.slots)
    predictions = 0
    for event in long_conversation(bot, agent.domain):
        tracker.update(event)
        if isinstance(event, (UserUttered, ActionExecuted)):
            by_rasa, in_order = both({PLACEHOLDER_TRACKER: tracker}, core_target)
            assert in_order == by_rasa, (predictions, event)
            predictions += 1
    assert predictions > 100


def test_an_input_clashing_with_a_node_is_refused_as_rasa_refuses_it(agent):
    runner = agent.processor.graph_runner
    target = agent.processor.model_metadata.nlu_target
    for run in (rasa_speedups.run_graph_by_rasa, rasa_speedups.run_graph_in_order):
        with pytest.raises(GraphRunError):
            run(runner, inputs={"clash": target}, targets=[target])


def test_installed_graph_run_is_what_the_processor_calls():
    rasa_speedups.install()
    assert DaskGraphRunner.run is rasa_speedups.run_graph_in_order


# Short and long, known and unknown words, digits, punctuation only, non-ASCII.
CLASSIFIED = [
    "hi", "I forgot my password", "can I talk to someone else?", "send 50 dollars to Kim on Friday",
    "what did I spend at the grocery store last month", "??", "my laptop won't start after the update, "
    "and the screen stays black even when I plug it in", "café crème", "zzzz qqqq",
]


def classifier_inputs(agent: Agent) -> "tuple[LogisticRegressionClassifier, List[Any]]":
    """Return the messages the logistic regression classifier gets, as the pipeline hands them over."""
    node = next(node for name, node in agent.processor.graph_runner._instantiated_nodes.items()
                if name.startswith("run_LogisticRegressionClassifier"))
    seen = []
    process = node._fn
    node._fn = lambda component, messages: seen.extend(messages) or process(component, messages)
    tracker = DialogueStateTracker.from_events("parse", [])
    try:
        for text in CLASSIFIED:
            rasa_speedups.parse_message_with_graph(agent.processor, UserMessage(text), tracker)
    finally:
        node._fn = process
    return node._component, seen


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_classifier_input_is_the_matrix_rasa_builds(agent):
    classifier, messages = classifier_inputs(agent)
    assert len(messages) == len(CLASSIFIED)
    for batch in [messages[:1], messages[4:5], messages]:
        expected = rasa_speedups.create_x_by_rasa(classifier, batch)
        got = rasa_speedups.logistic_regression_input(classifier, batch)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert (got != expected).nnz == 0
        assert np.array_equal(classifier.clf.predict_proba(got), classifier.clf.predict_proba(expected))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_classifier_input_with_dense_features_is_rasas_own(agent):
    classifier, messages = classifier_inputs(agent)
    dense = copy.deepcopy(messages[:2])
    for message in dense:
        message.add_features(Features(np.array([[0.5, -0.25, 1.0]]), FEATURE_TYPE_SENTENCE, TEXT, "test"))
    sparse_width = rasa_speedups.logistic_regression_input(classifier, messages[:2]).shape[1]
    expected = rasa_speedups.create_x_by_rasa(classifier, dense)
    got = rasa_speedups.logistic_regression_input(classifier, dense)
    # Rasa joins the dense features in; only its own routine knows how.
    assert expected.shape == (2, sparse_width + 3)
    assert got.shape == expected.shape and (got != expected).nnz == 0


def test_installed_classifier_input_is_what_the_classifier_calls():
    rasa_speedups.install()
    assert LogisticRegressionClassifier._create_X is rasa_speedups.logistic_regression_input


async def call_a_local_server_five_times() -> "tuple[List[Any], List[Any], EndpointConfig]":
    """Serve on a free port and call it through an endpoint; return answers and the callers' ports."""
    callers = []

    async def answer(request: web.Request) -> web.Response:
        callers.append(request.transport.get_extra_info("peername")[1])
        return web.json_response({"echo": (await request.json())["n"]})

    app = web.Application()
    app.router.add_post("/webhook", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
    try:
        answers = [await endpoint.request(json={"n": n}) for n in range(5)]
        await rasa_speedups.close_kept_sessions()
    finally:
        await runner.cleanup()
    return answers, callers, endpoint


def test_action_server_calls_share_one_connection_until_the_server_stops():
    rasa_speedups.install()
    answers, callers, endpoint = asyncio.run(call_a_local_server_five_times())
    assert answers == [{"echo": n} for n in range(5)]
    assert len(set(callers)) == 1 and len(callers) == 5
    loop, session = getattr(endpoint, rasa_speedups.KEPT_SESSION)
    assert session.closed
    # Another event loop (a new server) makes a session of its own.
    again, callers_again, _ = asyncio.run(call_a_local_server_five_times())
    assert again == answers and len(set(callers_again)) == 1



def test_an_endpoint_used_outside_an_event_loop_gets_rasas_own_session(monkeypatch):
    # No loop to keep a session for: nothing is kept, and Rasa makes its session as before.
    monkeypatch.setattr(rasa_speedups, "session_by_rasa", lambda endpoint: ("Rasa's session", endpoint))
    endpoint = EndpointConfig("http://127.0.0.1:9/webhook")
    assert rasa_speedups.kept_session(endpoint) == ("Rasa's session", endpoint)
    assert not hasattr(endpoint, rasa_speedups.KEPT_SESSION)
