"""An A2A agent as a host on the real stack: Helpdesk → concierge (A2A) → Financial, each arrival right."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from handoff.payload import arrival_message
from tests.stack import Stack, free_port
from tests.test_a2a import running_concierge
from tests.test_handoff_stack import arrival_sources, hand_over

pytestmark = pytest.mark.stack


@pytest.fixture
def concierge(stack: Stack) -> Iterator[str]:
    """Add the concierge to the running stack's config (everyone picks it up without a restart)."""
    before = stack.config()
    url = f"http://127.0.0.1:{free_port()}"
    config = stack.config()
    config["handoff_hosts"]["concierge"] = {"title": "Concierge", "url": url, "kind": "a2a"}
    stack.write_config(config)
    try:
        log = stack.config_path.parent / "concierge.log"
        with running_concierge(stack.config_path, "concierge", url, log):
            yield url
    finally:
        stack.write_config(before)


def test_helpdesk_to_an_a2a_agent_to_financial_with_the_arrival_right_at_each_hop(stack, concierge):
    person = stack.person()
    person.start()
    person.say("hi")
    greeting = hand_over(person, "Concierge")
    assert person.host == "concierge"
    assert any("Helpdesk Assistant" in text for text in person.texts("bot", "concierge")), greeting

    reply = person.say("I have a question about my bank card")
    assert person.host == "financial", reply
    conversation = person.conversation_id
    assert arrival_sources(stack, "financial", conversation) == [concierge]
    # The helpdesk heard nothing after it handed the person on.
    assert stack.user_texts("helpdesk", conversation)[-1].startswith("/trigger_handoff")
    assert arrival_message(concierge) in stack.user_texts("financial", conversation)
