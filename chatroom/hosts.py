"""Adapters that deliver a person's message to a host and return its replies."""
from __future__ import annotations

import logging
from typing import Any

import requests

from handoff.config import Host

logger = logging.getLogger(__name__)


class HostUnavailable(Exception):
    """The host did not answer usably: down, slow, an error status or no reply."""


class RasaHost:
    """A host speaking Rasa's REST channel: POST {url}/webhooks/rest/webhook."""

    def __init__(self, host: Host, timeout: float, session: requests.Session) -> None:
        self.host = host
        self.timeout = timeout
        self.session = session

    def send(self, sender: str, text: str) -> list[dict[str, Any]]:
        """Send one message and return the host's replies."""
        url = f"{self.host.url}/webhooks/rest/webhook"
        try:
            response = self.session.post(
                url, json={"sender": sender, "message": text}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise HostUnavailable(f"{self.host.id} at {url}: {type(exc).__name__}") from None
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


def adapter_for(host: Host, timeout: float, session: requests.Session) -> RasaHost:
    """Return the adapter that talks to this host."""
    if host.kind == "rasa":
        return RasaHost(host, timeout, session)
    raise HostUnavailable(f"{host.id}: kind '{host.kind}' is not served by this chatroom yet")
