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
from typing import Any, Awaitable, Callable, Optional, Text

import aiohttp
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff import rasa_speedups

rasa_speedups.install()

logger = logging.getLogger(__name__)

ACTION_SERVER_ENV = "ACTION_SERVER_URL"
# A health answer is trusted this long, so a busy bot asks at most once in a while.
HEALTH_CACHE_SECONDS = 2.0
HEALTH_TIMEOUT_SECONDS = 1.0


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
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def refuse_while_actions_are_down(request: Request) -> Optional[HTTPResponse]:
            if request.method == "POST" and not await self.action_server_up():
                return response.json({"error": "this bot's action server is not answering"}, status=503)
            return None

        return webhook
