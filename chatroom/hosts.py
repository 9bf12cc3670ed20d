"""Adapters that deliver a person's message to a host and return its replies.

Each adapter is told where a person comes from when they arrive (``arrive``)
and otherwise just passes their messages on (``send``).
"""
from __future__ import annotations

import logging
from typing import Any, Protocol

import requests

from handoff.config import Host, current_config
from handoff.payload import REASON, arrival_message

from . import parlant_client, stays, store
from .web import http_session

logger = logging.getLogger(__name__)


class HostUnavailable(Exception):
    """The host did not answer usably: down, slow, an error status or no reply."""


class Adapter(Protocol):
    def send(self, conversation_id: str, text: str, timeout: float) -> list[dict[str, Any]]: ...

    def arrive(
        self, conversation_id: str, from_host: Host, request: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]: ...


class RasaHost:
    """A host speaking Rasa's REST channel: POST {url}/webhooks/rest/webhook."""

    def __init__(self, host: Host, http: requests.Session) -> None:
        self.host = host
        self.http = http

    def send(self, conversation_id: str, text: str, timeout: float) -> list[dict[str, Any]]:
        """Send one message and return the host's replies."""
        url = f"{self.host.url}/webhooks/rest/webhook"
        try:
            # requests would follow a 307 or 308 with the same body: the person's text, elsewhere.
            response = self.http.post(
                url, json={"sender": conversation_id, "message": text}, timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise HostUnavailable(f"{self.host.id} at {url}: {type(exc).__name__}") from None
        if response.is_redirect:
            raise HostUnavailable(
                f"{self.host.id} at {url}: answered HTTP {response.status_code}, a redirect, which is never "
                "followed (set the host's url in handoff_config.yml to where it really answers)"
            )
        if response.status_code != 200:
            raise HostUnavailable(f"{self.host.id} at {url}: HTTP {response.status_code}")
        try:
            replies = response.json()
        except ValueError:
            raise HostUnavailable(f"{self.host.id} at {url}: reply is not JSON") from None
        if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
            raise HostUnavailable(f"{self.host.id} at {url}: reply is not a list of messages")
        if not replies:
            raise HostUnavailable(f"{self.host.id} at {url}: empty reply")
        return replies

    def arrive(
        self, conversation_id: str, from_host: Host, request: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """Tell the bot where the person comes from; it greets them (or welcomes them back)."""
        return self.send(conversation_id, arrival_message(from_host.url), timeout)


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
        self, conversation_id: str, from_host: Host, request: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """Open a stay: a session holding the transcript, where the person came from and why."""
        reason = request.get(REASON) if isinstance(request.get(REASON), str) else None
        self._open_stay(conversation_id, from_host, reason, timeout)
        return [{"text": stays.CONNECTING.format(title=self.host.title)}]

    def send(self, conversation_id: str, text: str, timeout: float) -> list[dict[str, Any]]:
        """Post the person's message as a customer event, opening a new stay if the last one closed."""
        stay = store.find_open_stay(self.db, conversation_id)
        replies = []
        if stay is None or stay.host_id != self.host.id:
            # The stay was closed and the person writes again: back into the queue, naming
            # the host they came from the first time.
            earlier = store.list_conversation_stays(self.db, conversation_id)
            from_host = current_config().find_host(earlier[-1].from_host) if earlier else None
            stay = self._open_stay(conversation_id, from_host, stays.WROTE_AGAIN, timeout)
            replies = [{"text": stays.CONNECTING.format(title=self.host.title)}]
        self._call(self.client.create_customer_event, stay.session_id, text, timeout=timeout)
        return replies

    def _open_stay(
        self, conversation_id: str, from_host: Host | None, reason: str | None, timeout: float
    ) -> store.Stay:
        conversation = store.find_conversation(self.db, conversation_id)
        return self._call(
            stays.open_stay, self.db, self.client, current_config(), self.host, conversation,
            from_host, reason, timeout=timeout,
        )

    def _call(self, function, *args: Any, timeout: float) -> Any:
        self.client.timeout = timeout
        try:
            return function(*args)
        except parlant_client.ParlantError as exc:
            raise HostUnavailable(f"{self.host.id}: {exc}") from None


def adapter_for(host: Host, connection: store.Connection) -> Adapter:
    """Return the adapter that talks to this host."""
    if host.kind == "rasa":
        return RasaHost(host, http_session())
    if host.kind == "parlant":
        return ParlantHost(host, stays.desk_client(host), connection)
    raise HostUnavailable(f"{host.id}: kind '{host.kind}' is not served by this chatroom yet")
