"""Rasa's REST channel, refusing messages while the bot's action server is down.

Rasa answers even when a custom action fails, with whatever its policies predict
next, so a person would get a confident wrong answer and the tracker would move
on. This channel asks the action server's /health first and answers 503 instead,
which the chatroom turns into "temporarily unavailable"; nothing reaches the
tracker. Enable it in a bot's credentials.yml as ``handoff.channel.HandoffRestInput:``.
Importing it also installs ``handoff.rasa_speedups`` in the Rasa server.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import aiohttp
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.shared.core.events import UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff import arrival, longlived, rasa_speedups, rasa_stores
from handoff.payload import HANDOFF_TO

rasa_speedups.install()

logger = logging.getLogger(__name__)

ACTION_SERVER_ENV = "ACTION_SERVER_URL"
# A health answer is trusted this long, so a busy bot asks at most once in a while.
HEALTH_CACHE_SECONDS = 2.0
HEALTH_TIMEOUT_SECONDS = 1.0


def sender_of(request: Request) -> Text:
    """Return the conversation a REST message names ('' if the body names none)."""
    try:
        body = request.json if request.body else None
    except Exception:  # noqa: BLE001 - Rasa's own handler answers a malformed body
        return ""
    return str(body.get("sender", "")) if isinstance(body, dict) else ""


class HandoffRestInput(RestInput):
    """The REST channel (same name and paths) with an action-server check on each message."""

    def __init__(self) -> None:
        super().__init__()
        self._checked_at = 0.0
        self._healthy = True

    @classmethod
    def name(cls) -> Text:
        # Keep Rasa's name: the webhook path and the tracker's input_channel stay "rest".
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[dict]) -> "HandoffRestInput":
        return cls()

    async def action_server_up(self) -> bool:
        url = os.environ.get(ACTION_SERVER_ENV, "")
        if not url:
            return True
        now = time.monotonic()
        if now - self._checked_at < HEALTH_CACHE_SECONDS:
            return self._healthy
        health = url.rsplit("/", 1)[0] + "/health"
        try:
            timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(health) as answer:
                    self._healthy = answer.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            logger.warning("action server %s is not answering: %s", health, exc)
            self._healthy = False
        self._checked_at = now
        return self._healthy

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(self.feeding_requests(on_new_message))

        @webhook.listener("after_server_start")
        async def freeze_the_model(*_: Any) -> None:
            # After Rasa's own before_server_start listener has loaded the model.
            longlived.freeze_loaded()

        @webhook.listener("after_server_stop")
        async def close_action_server_connections(*_: Any) -> None:
            await rasa_speedups.close_kept_sessions()

        @webhook.middleware("request")
        async def refuse_while_actions_are_down(request: Request) -> Optional[HTTPResponse]:
            if request.method == "POST" and not await self.action_server_up():
                return response.json({"error": "this bot's action server is not answering"}, status=503)
            if request.method == "POST":
                rasa_stores.store_failed(sender_of(request))  # a failure before this turn is not its own
            return None

        @webhook.middleware("response")
        async def refuse_what_was_not_stored(request: Request, _: HTTPResponse) -> Optional[HTTPResponse]:
            sender = sender_of(request) if request.method == "POST" else None
            if sender is not None and rasa_stores.store_failed(sender):
                logger.warning("sender=%s: the tracker store failed this turn; answered 503", sender)
                return response.json({"error": "this bot's tracker store is not answering"}, status=503)
            return None

        return webhook

    # Feeding a handed-over request to the bot right after the arrival: handoff/arrival.py says
    # why and when. Kept apart from the checks above.

    # The Sanic app serving this channel: its agent (replaced when a model loads) reads words and trackers.
    _server: Any = None

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        self._server = request.app
        return super().get_metadata(request)

    def feeding_requests(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Callable[
        [UserMessage], Awaitable[None]
    ]:
        """Wrap Rasa's message handler: an arrival passing on a request the bot acts on is followed by it.

        The arrival is marked (the greeting knows the request follows); the
        request goes in as the person's next message, and both answers land
        in the same reply.
        """

        async def handle(message: UserMessage) -> None:
            request = await self.request_to_feed(message)
            if request is None:
                await on_new_message(message)
                return
            metadata = dict(message.metadata or {})
            await on_new_message(UserMessage(
                message.text, message.output_channel, message.sender_id,
                input_channel=message.input_channel, metadata={**metadata, arrival.REQUEST_FOLLOWS: True},
            ))
            await on_new_message(UserMessage(
                request, message.output_channel, message.sender_id, input_channel=message.input_channel,
                metadata={arrival.REQUEST_OF: arrival.handoff_id_of(metadata)},
            ))

        return handle

    async def request_to_feed(self, message: UserMessage) -> Optional[Text]:
        """Return the request an arrival passes on, if the bot would act on it and has not had it yet."""
        request = arrival.request_to_forward(message.text, message.metadata)
        agent = getattr(getattr(self._server, "ctx", None), "agent", None)
        if request is None or agent is None or not agent.is_ready():
            return None
        try:
            tracker = await agent.tracker_store.retrieve(message.sender_id)
            events = tracker.events if tracker is not None else []
            earlier = [event.metadata for event in events if isinstance(event, UserUttered)]
            if arrival.forwarded_before(earlier, arrival.handoff_id_of(message.metadata)):
                return None
            intent = ((await agent.parse_message(request)).get("intent") or {}).get("name")
        except Exception:  # noqa: BLE001 - the arrival itself must go through whatever happens here
            logger.exception("sender=%s: could not read the request an arrival passed on", message.sender_id)
            return None
        if not arrival.acts_on(intent, arrival.intents_pointing_elsewhere(handoff_to_mappings(agent.domain))):
            logger.info("sender=%s: the request passed on reads as %s; not fed", message.sender_id, intent)
            return None
        return request


def handoff_to_mappings(domain: Any) -> List[Dict[Text, Any]]:
    """Return the slot mappings of the bot's ``handoff_to`` slot (none if it has no such slot)."""
    for slot in getattr(domain, "slots", []):
        if slot.name == HANDOFF_TO:
            return list(slot.mappings)
    return []
