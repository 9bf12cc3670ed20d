"""The concierge served over A2A (JSON-RPC binding) with a2a-sdk's Starlette routes.

How its answers go on the wire, following the mapping in chatroom/a2a_client.py:

- most answers are one agent Message: a text part per sentence, plus a data
  part ``{"handoff_host", "title", "handoff_to", "reason", "summary"}`` when it
  hands the person off;
- "where is ..." runs a directory task: found, the task is completed with the
  answer as its artifact; not found, the task waits (input-required) with the
  question in its status message, and the next message of that task names the place.

The card offers JSON-RPC at protocol 1.0 or 0.3 (``--protocol``); the endpoint
accepts both, so either kind of client is served.
"""
from __future__ import annotations

from typing import Any

from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    Task,
    TaskState,
    TaskStatus,
    UnsupportedOperationError,
)
from starlette.applications import Starlette

from .answers import Answer, Concierge

RPC_PATH = "/"
PROTOCOLS = ("1.0", "0.3")
DIRECTORY_ARTIFACT = "directory"

SKILLS = (
    AgentSkill(
        id="greet_arrivals", name="Greet arrivals",
        description="Greets a person handed over from another host by that host's title.",
        tags=["handoff"], examples=['/handoff{"from_host":"http://localhost:5005"}'],
    ),
    AgentSkill(
        id="opening_hours", name="Opening hours",
        description="Says when the office is open.", tags=["office"],
        examples=["When are you open?"],
    ),
    AgentSkill(
        id="directory", name="Where to find things",
        description="Says where printers, parking, lost property, meeting rooms and kitchens are; "
        "asks which place when none is named.",
        tags=["office"], examples=["Where is the printer?"],
    ),
    AgentSkill(
        id="notes", name="Remember notes",
        description="Remembers what the person asks it to, for the rest of the conversation.",
        tags=["memory"], examples=["Remember my desk is 4.12", "What did I tell you?"],
    ),
    AgentSkill(
        id="handoff", name="Hand off",
        description="Hands money, bank and card questions to the host configured for them, and "
        "'go back' to the host the person came from, with a handoff data part.",
        tags=["handoff"], examples=["I have a question about my card", "Go back"],
    ),
)


def agent_card(url: str, title: str, protocol: str) -> AgentCard:
    """Return the concierge's card: JSON-RPC at ``url`` in protocol ``protocol``, and its skills."""
    return AgentCard(
        name=title,
        description="A small deterministic concierge: opening hours, where things are, notes, handoffs.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version=protocol),
        ],
        capabilities=AgentCapabilities(streaming=False, push_notifications=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=list(SKILLS),
    )


def answer_parts(answer: Answer) -> list[Part]:
    """Return the parts of an answer: its texts, then its handoff request as a data part."""
    parts = [new_text_part(text) for text in answer.texts]
    if answer.handoff is not None:
        parts.append(new_data_part(answer.handoff))
    return parts


def arrival_envelope(context: RequestContext) -> dict[str, Any] | None:
    """Return the handoff envelope sent as a data part of the message, if any."""
    if context.message is None:
        return None
    for data in get_data_parts(context.message.parts):
        if isinstance(data, dict):
            return data
    return None


class ConciergeExecutor(AgentExecutor):
    """Answer each message with the concierge's rules."""

    def __init__(self, concierge: Concierge) -> None:
        self.concierge = concierge

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        text = "\n".join(get_text_parts(message.parts)) if message is not None else ""
        task = context.current_task
        awaiting_place = task is not None and task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        answer = self.concierge.answer(
            context.context_id, text, arrival_envelope(context), awaiting_place=awaiting_place
        )
        if answer.place is None and not answer.asks_place:
            await event_queue.enqueue_event(new_message(answer_parts(answer), context_id=context.context_id))
            return
        if task is None:
            await event_queue.enqueue_event(
                Task(
                    id=context.task_id, context_id=context.context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED), history=[message],
                )
            )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        if answer.asks_place:
            await updater.requires_input(
                new_message(answer_parts(answer), context_id=context.context_id, task_id=context.task_id)
            )
            return
        await updater.add_artifact(answer_parts(answer), name=DIRECTORY_ARTIFACT)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise UnsupportedOperationError(message="the concierge's answers are immediate; nothing to cancel")


def create_app(concierge: Concierge, url: str, protocol: str = "1.0") -> Starlette:
    """Return the ASGI app serving the concierge's card and its JSON-RPC endpoint."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol '{protocol}' is not served (use one of: {', '.join(PROTOCOLS)})")
    card = agent_card(url, concierge.title(), protocol)
    handler = DefaultRequestHandler(
        agent_executor=ConciergeExecutor(concierge), task_store=InMemoryTaskStore(), agent_card=card,
    )
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(
        handler, rpc_url=RPC_PATH, enable_v0_3_compat=True
    )
    return Starlette(routes=routes)
