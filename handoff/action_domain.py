"""In the action server: an action that reads a domain Rasa did not send fails, saying how to fix it.

With ``enable_selective_domain`` in a bot's endpoints.yml, Rasa sends the domain
only to the actions its domain.yml marks ``send_domain: true`` (and to every
``validate_<form>``). rasa-sdk gives any other action an empty dict, so one that
reads it would quietly see no forms and no slots. Such an action gets a domain
that raises ``DomainNotSent`` instead, naming the action and the line to add.
"""
from __future__ import annotations

from typing import Any, Dict, NoReturn, Optional, Text

from rasa_sdk.executor import ActionExecutor

run_by_sdk = ActionExecutor.run


class DomainNotSent(RuntimeError):
    """An action read the domain, which Rasa sends only to actions marked ``send_domain: true``."""


class UnsentDomain(dict):
    """The domain an action is given when Rasa sent none: any read raises DomainNotSent."""

    def __init__(self, action_name: Text) -> None:
        super().__init__()
        self.action_name = action_name

    def refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise DomainNotSent(
            f"action {self.action_name!r} reads the domain, which Rasa sends only to the actions "
            f"the bot's domain.yml marks send_domain (enable_selective_domain in endpoints.yml). "
            f"Fix: in domain.yml under actions:, write `- {self.action_name}:` and below it "
            f"`send_domain: true`."
        )

    __getitem__ = get = keys = items = values = copy = __contains__ = __iter__ = __len__ = refuse


async def run_with_domain_guard(
    self: ActionExecutor, action_call: Dict[Text, Any]
) -> Optional[Dict[Text, Any]]:
    """Run the action as rasa-sdk does, with an UnsentDomain when the call carries no domain."""
    name = action_call.get("next_action")
    if name and "domain" not in action_call:
        action_call = {**action_call, "domain": UnsentDomain(name)}
    return await run_by_sdk(self, action_call)


def install() -> None:
    """Put the guard into rasa-sdk's executor (the action server calls this before it starts)."""
    ActionExecutor.run = run_with_domain_guard
