"""The REST channel feeds a request to the bot right after the arrival: once, if the bot acts on it."""
import asyncio
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.events import UserUttered

from handoff import arrival
from handoff.channel import HandoffRestInput
from tests.rasa_side.bots import load_domain

ARRIVAL = '/handoff{"from_host":"http://localhost:5005"}'
REQUEST = "I want to pay my emblem card"


class Agent:
    """Stands for Rasa's agent: its NLU reads every text as one intent; its tracker holds ``events``."""

    def __init__(self, intent: str, events: Optional[List[Any]] = None, broken: bool = False) -> None:
        self.intent = intent
        self.events = events or []
        self.broken = broken
        self.parsed: List[str] = []
        self.tracker_store = self
        slots = [SimpleNamespace(name=name, mappings=spec["mappings"])
                 for name, spec in load_domain("financial")["slots"].items()]
        self.domain = SimpleNamespace(slots=slots)

    def is_ready(self) -> bool:
        return True

    async def retrieve(self, sender_id: str) -> Any:
        if self.broken:
            raise ConnectionError("tracker store is down")
        return SimpleNamespace(events=self.events)

    async def parse_message(self, text: str) -> Dict[str, Any]:
        self.parsed.append(text)
        return {"text": text, "intent": {"name": self.intent, "confidence": 0.9}}


def handled(agent: Optional[Agent], text: str = ARRIVAL, reason: str = "out_of_domain") -> List[UserMessage]:
    """Return the messages the bot handles when the chatroom sends ``text`` with an envelope."""
    channel = HandoffRestInput()
    if agent is not None:
        channel._server = SimpleNamespace(ctx=SimpleNamespace(agent=agent))
    seen: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        seen.append(message)

    envelope = {"reason": reason, "request": REQUEST, "handoff_id": "h1"}
    message = UserMessage(
        text, CollectingOutputChannel(), "c1", input_channel="rest", metadata={"handoff": envelope}
    )
    asyncio.run(channel.feeding_requests(on_new_message)(message))
    return seen


def test_a_request_the_bot_acts_on_follows_the_arrival_as_the_persons_next_message():
    agent = Agent("pay_cc")
    first, second = handled(agent)
    assert first.text == ARRIVAL
    assert first.metadata["handoff"]["request"] == REQUEST
    assert first.metadata[arrival.REQUEST_FOLLOWS] is True
    assert (second.text, second.metadata) == (REQUEST, {arrival.REQUEST_OF: "h1"})
    assert (second.sender_id, second.input_channel) == ("c1", "rest")
    assert second.output_channel is first.output_channel, "both answers go back in the one reply"
    assert agent.parsed == [REQUEST]


@pytest.mark.parametrize("intent", [
    "nlu_fallback", "human_handoff", "trigger_handoff", "helpdesk_request", "inform", "restart", "greet",
])
def test_words_the_bot_would_not_act_on_are_not_fed(intent):
    (only,) = handled(Agent(intent))
    assert only.text == ARRIVAL
    assert arrival.REQUEST_FOLLOWS not in only.metadata


def test_a_request_fed_once_is_not_fed_again_when_the_arrival_is_repeated():
    earlier = [
        UserUttered(ARRIVAL, metadata={"handoff": {"handoff_id": "h1"}}),
        UserUttered(REQUEST, metadata={arrival.REQUEST_OF: "h1"}),
    ]
    agent = Agent("pay_cc", earlier)
    (only,) = handled(agent)
    assert arrival.REQUEST_FOLLOWS not in only.metadata
    assert agent.parsed == []
    assert len(handled(Agent("pay_cc", earlier[:1]))) == 2, "an arrival whose request never went in gets it"


def test_the_arrival_goes_through_when_the_tracker_cannot_be_read():
    (only,) = handled(Agent("pay_cc", broken=True))
    assert only.text == ARRIVAL


@pytest.mark.parametrize("text, reason", [
    ("I want to pay my emblem card", "out_of_domain"),
    (ARRIVAL, "asked_for_human"),
])
def test_only_an_arrival_passing_on_a_task_is_looked_at(text, reason):
    agent = Agent("pay_cc")
    assert [m.text for m in handled(agent, text, reason)] == [text]
    assert agent.parsed == []


def test_without_a_server_yet_the_arrival_is_handled_alone():
    assert [m.text for m in handled(None)] == [ARRIVAL]
