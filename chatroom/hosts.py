"""Adapters that deliver a person's message to a host and return its replies.

Each adapter is told where a person comes from when they arrive (``arrive``)
and otherwise just passes their messages on (``send``).
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from typing import Any, Protocol

import urllib3
from flask import current_app

from handoff.config import Host, current_config
from handoff.envelope import METADATA_KEY, REQUEST
from handoff.payload import arrival_message

from . import parlant_client, stays, store
from .a2a_client import A2AClient, A2AHostError
from .web import http_session, webhook_pool

logger = logging.getLogger(__name__)
# Counts this worker's turns to Rasa hosts, to take their replicas in turn.
_turns = itertools.count()
JSON_HEADERS = {"Content-Type": "application/json"}


class HostUnavailable(Exception):
    """The host did not answer usably: down, slow, an error status or no reply."""


class Adapter(Protocol):
    def send(self, conversation_id: str, text: str, timeout: float) -> list[dict[str, Any]]: ...

    def arrive(
        self, conversation_id: str, from_host: Host, envelope: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]: ...


class RasaHost:
    """A host speaking Rasa's REST channel: POST {url}/webhooks/rest/webhook."""

    def __init__(self, host: Host, pool: urllib3.PoolManager) -> None:
        self.host = host
        self.pool = pool

    def send(
        self, conversation_id: str, text: str, timeout: float, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Send one message to one of the host's replicas and return its replies.

        Turns go round the replicas (they share the bot's tracker and lock
        stores); one that refuses the connection got nothing, so the next is tried.
        Any other failure makes the host unavailable for this turn.
        """
        body: dict[str, Any] = {"sender": conversation_id, "message": text}
        if metadata:
            body["metadata"] = metadata
        data = json.dumps(body).encode()
        replicas = self.host.replica_urls
        first = next(_turns) % len(replicas)
        deadline = time.monotonic() + timeout
        for replica in replicas[first:] + replicas[:first]:
            url = f"{replica}/webhooks/rest/webhook"
            left = max(0.05, deadline - time.monotonic())
            try:
                # Never redirected: a 307 or 308 would carry the person's text elsewhere.
                response = self.pool.request(
                    "POST", url, body=data, headers=JSON_HEADERS,
                    timeout=urllib3.Timeout(connect=left, read=left), retries=False, redirect=False,
                )
            except urllib3.exceptions.NewConnectionError as exc:
                # Refused: the replica got nothing (a connect timeout is not caught here,
                # though urllib3 makes this class a ConnectTimeoutError too). A connection
                # dropped mid-turn is not tried elsewhere: that replica may have handled
                # the message, and the bot would hear it twice.
                if time.monotonic() >= deadline:
                    raise HostUnavailable(f"{self.host.id} at {url}: {type(exc).__name__}") from None
                logger.warning("host=%s: %s refused to connect; trying another", self.host.id, replica)
                continue
            except urllib3.exceptions.HTTPError as exc:
                raise HostUnavailable(f"{self.host.id} at {url}: {type(exc).__name__}") from None
            logger.info("conversation=%s turn served by %s", conversation_id, replica)
            return self.read_replies(url, response)
        raise HostUnavailable(f"{self.host.id}: no replica answered")

    def read_replies(self, url: str, response: urllib3.BaseHTTPResponse) -> list[dict[str, Any]]:
        if response.get_redirect_location():
            raise HostUnavailable(
                f"{self.host.id} at {url}: answered HTTP {response.status}, a redirect, which is never "
                "followed (set the host's url in handoff_config.yml to where it really answers)"
            )
        if response.status != 200:
            raise HostUnavailable(f"{self.host.id} at {url}: HTTP {response.status}")
        try:
            replies = json.loads(response.data)
        except ValueError:
            raise HostUnavailable(f"{self.host.id} at {url}: reply is not JSON") from None
        if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
            raise HostUnavailable(f"{self.host.id} at {url}: reply is not a list of messages")
        if not replies:
            raise HostUnavailable(f"{self.host.id} at {url}: empty reply")
        return replies

    def arrive(
        self, conversation_id: str, from_host: Host, envelope: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """Tell the bot where the person comes from, with the envelope as REST metadata."""
        return self.send(
            conversation_id, arrival_message(from_host.url), timeout, metadata={METADATA_KEY: envelope}
        )


class ParlantHost:
    """A human desk: a Parlant server whose sessions are in manual mode (see stays.py).

    Operators answer later, through the console; their messages reach the
    person through the relay, so a turn here returns only what the chatroom says.
    """

    def __init__(self, host: Host, client: parlant_client.Parlant, connection: store.Connection) -> None:
        self.host = host
        self.client = client
        self.db = connection

    def arrive(
        self, conversation_id: str, from_host: Host, envelope: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """Open a stay: a session holding the transcript, where the person came from and why."""
        self._open_stay(conversation_id, from_host, envelope, timeout)
        return [{"text": stays.arrival_text(self.host)}]

    def send(self, conversation_id: str, text: str, timeout: float) -> list[dict[str, Any]]:
        """Post the person's message as a customer event, opening a new stay if the last one closed."""
        stay = store.find_open_stay(self.db, conversation_id)
        replies = []
        if stay is None or stay.host_id != self.host.id:
            # The stay was closed and the person writes again: back into the queue, naming
            # the host they came from the first time.
            earlier = store.list_conversation_stays(self.db, conversation_id)
            from_host = current_config().find_host(earlier[-1].from_host) if earlier else None
            envelope = {REQUEST: stays.WROTE_AGAIN}
            stay = self._open_stay(conversation_id, from_host, envelope, timeout)
            replies = [{"text": stays.arrival_text(self.host)}]
        self._call(self.client.create_customer_event, stay.session_id, text, timeout=timeout)
        return replies

    def _open_stay(
        self, conversation_id: str, from_host: Host | None, envelope: dict[str, Any], timeout: float
    ) -> store.Stay:
        conversation = store.find_conversation(self.db, conversation_id)
        return self._call(
            stays.open_stay, self.db, self.client, current_config(), self.host, conversation,
            from_host, envelope, timeout=timeout,
        )

    def _call(self, function, *args: Any, timeout: float) -> Any:
        self.client.timeout = timeout
        try:
            return function(*args)
        except parlant_client.ParlantError as exc:
            raise HostUnavailable(f"{self.host.id}: {exc}") from None


class A2AHost:
    """Any agent speaking the Agent2Agent protocol; the conversation is its contextId (see a2a_client.py)."""

    def __init__(self, host: Host, client: A2AClient) -> None:
        self.host = host
        self.client = client

    def send(
        self, conversation_id: str, text: str, timeout: float, envelope: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Send one turn; the agent's replies, and its handoff request as a Rasa-style custom message."""
        try:
            reply = self.client.send(self.host.url, conversation_id, text, timeout=timeout, envelope=envelope)
        except A2AHostError as exc:
            raise HostUnavailable(f"{self.host.id}: {exc}") from None
        return reply.rest_messages()

    def arrive(
        self, conversation_id: str, from_host: Host, envelope: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """Send the arrival, exactly as to a Rasa bot, with the envelope as a data part."""
        return self.send(conversation_id, arrival_message(from_host.url), timeout, envelope=envelope)


def a2a_client() -> A2AClient:
    """Return the app's A2A client (it keeps each agent's card and open tasks)."""
    client = current_app.extensions.get("a2a")
    if client is None:
        client = current_app.extensions["a2a"] = A2AClient(http_session())
    return client


def adapter_for(host: Host, connection: store.Connection) -> Adapter:
    """Return the adapter that talks to this host."""
    if host.kind == "rasa":
        return RasaHost(host, webhook_pool())
    if host.kind == "parlant":
        return ParlantHost(host, stays.desk_client(host), connection)
    if host.kind == "a2a":
        return A2AHost(host, a2a_client())
    raise HostUnavailable(f"{host.id}: kind '{host.kind}' is not served by this chatroom")
