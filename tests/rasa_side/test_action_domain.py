"""The domain goes only to the actions that read it, and an action reading one it was not sent says so."""
import ast
import asyncio
import importlib
import inspect
import pkgutil
import sys
import textwrap
import warnings
from typing import Any, Dict, List, Set

import pytest
import yaml
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from handoff import action_domain
from handoff.action_domain import DomainNotSent, UnsentDomain
from tests.rasa_side.bots import BOTS, load_actions

with warnings.catch_warnings():
    # Importing Rasa's core imports TensorFlow, whose own imports warn.
    warnings.simplefilter("ignore", DeprecationWarning)
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import read_endpoint_config

BOT_NAMES = ("helpdesk", "financial")


class Greet(Action):
    def name(self) -> str:
        return "action_greet_plainly"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List:
        dispatcher.utter_message(text="hello")
        return []


class CountForms(Action):
    def name(self) -> str:
        return "action_count_forms"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List:
        dispatcher.utter_message(text=f"{len(domain.get('forms', {}))} forms")
        return []


def call(action_name: str, **extra: Any) -> Dict[str, Any]:
    tracker = {"sender_id": "c1", "slots": {}, "latest_message": {}, "events": [], "paused": False,
               "followup_action": None, "active_loop": {}, "latest_action_name": None}
    return {"next_action": action_name, "sender_id": "c1", "tracker": tracker, "version": "3.6.2", **extra}


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> ActionExecutor:
    monkeypatch.setattr(ActionExecutor, "run", ActionExecutor.run)  # undone after the test
    action_domain.install()
    executor = ActionExecutor()
    executor.register_action(Greet())
    executor.register_action(CountForms())
    return executor


def texts(result: Dict[str, Any]) -> List[str]:
    return [response["text"] for response in result["responses"]]


def test_an_action_not_sent_the_domain_runs_as_before(executor: ActionExecutor):
    assert texts(asyncio.run(executor.run(call("action_greet_plainly")))) == ["hello"]


def test_an_action_sent_the_domain_reads_it(executor: ActionExecutor):
    result = asyncio.run(executor.run(call("action_count_forms", domain={"forms": {"a": {}, "b": {}}})))
    assert texts(result) == ["2 forms"]


def test_an_action_reading_a_domain_it_was_not_sent_fails_with_the_fix(executor: ActionExecutor):
    with pytest.raises(DomainNotSent) as refused:
        asyncio.run(executor.run(call("action_count_forms")))
    message = str(refused.value)
    assert "'action_count_forms' reads the domain" in message
    assert "domain.yml" in message and "- action_count_forms:" in message and "send_domain: true" in message


@pytest.mark.parametrize("read", [
    lambda domain: domain["forms"], lambda domain: domain.get("forms"), lambda domain: "forms" in domain,
    bool, list, lambda domain: domain.items(),
])
def test_every_way_of_reading_an_unsent_domain_is_refused(read):
    with pytest.raises(DomainNotSent, match="'action_x' reads the domain"):
        read(UnsentDomain("action_x"))


def bot_actions(bot: str) -> List[type]:
    """Return the Action classes defined in the bot's actions package."""
    package = importlib.import_module(load_actions(bot))
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    prefix = f"{package.__name__}."
    found = []
    for name, module in list(sys.modules.items()):
        if name.startswith(prefix):
            found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                      if issubclass(cls, Action) and cls.__module__ == name and not inspect.isabstract(cls)]
    return found


def reads_domain(cls: type) -> bool:
    """Return whether the body of the class's own run() uses its ``domain`` argument."""
    if "run" not in vars(cls):
        return False
    function = ast.parse(textwrap.dedent(inspect.getsource(cls.run))).body[0]
    return any(isinstance(node, ast.Name) and node.id == "domain"
               for statement in function.body for node in ast.walk(statement))


def marked_send_domain(bot: str) -> Set[str]:
    actions = yaml.safe_load((BOTS / bot / "domain.yml").read_text())["actions"]
    return {name for entry in actions if isinstance(entry, dict)
            for name, options in entry.items() if (options or {}).get("send_domain")}


@pytest.mark.parametrize("bot", BOT_NAMES)
def test_each_bots_actions_that_read_the_domain_are_marked_send_domain(bot: str):
    # Form validation actions always get the domain; any other must be marked.
    readers = {cls().name() for cls in bot_actions(bot)
               if not issubclass(cls, FormValidationAction) and reads_domain(cls)}
    assert readers == marked_send_domain(bot)
    if bot == "financial":
        assert readers >= {"action_session_start", "action_pay_cc", "action_switch_forms_affirm"}


# Rasa warns of its own removed slot auto-fill, and pkg_resources of itself, on reading a domain.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("bot", BOT_NAMES)
def test_rasa_sends_each_bots_domain_only_to_the_actions_that_read_it(bot: str):
    domain = Domain.load(str(BOTS / bot / "domain.yml"))
    endpoint = read_endpoint_config(str(BOTS / bot / "endpoints.yml"), "action_endpoint")
    tracker = DialogueStateTracker("c1", domain.slots)
    needs = marked_send_domain(bot) | {name for name in domain.user_actions if name.startswith("validate_")}
    for name in domain.user_actions:
        sent = RemoteAction(name, endpoint)._action_call_format(tracker, domain)
        assert ("domain" in sent) == (name in needs), name
    assert "action_handoff" not in needs
