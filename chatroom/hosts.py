"""Adapters that deliver a person's message to a host and return its replies."""
from __future__ import annotations

import logging
import sqlite3
from typing import Any

import requests

from handoff.config import Host, current_config
from handoff.payload import REASON

from . import db, parlant

logger = logging.getLogger(__name__)


class HostUnavailable(Exception):
    """The host did not answer usably: down, slow, an error status or no reply."""


class RasaHost:
    """A host speaking Rasa's REST channel: POST {url}/webhooks/rest/webhook."""

    def __init__(self, host: Host, timeout: float, session: requests.Session) -> None:
        self.host = host
        self.timeout = timeout
        self.session = session

    def send(self, sender: str, text: str, handoff: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Send one message and return the host's replies.

        ``handoff`` is unused: a Rasa bot learns where the person came from in the arrival message.
        """
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


class ParlantHost:
    """A human desk: a Parlant server whose sessions are in manual mode (see chatroom/parlant.py).

    Operators answer later, through the console; their messages reach the
    person through the relay, so a turn here returns only what the chatroom says.
    """

    def __init__(self, host: Host, client: parlant.Parlant, connection: sqlite3.Connection) -> None:
        self.host = host
        self.client = client
        self.db = connection

    def send(self, sender: str, text: str, handoff: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Open a session on arrival, else post the person's message as a customer event."""
        try:
            if handoff is not None:
                reason = handoff.get(REASON) if isinstance(handoff.get(REASON), str) else None
                self.open_stay(sender, reason)
                return [{"text": parlant.CONNECTING.format(title=self.host.title)}]
            stay = db.find_open_desk_session(self.db, sender)
            replies = []
            if stay is None or stay.host_id != self.host.id:
                # The stay was closed and the person writes again: back into the queue.
                stay = self.open_stay(sender, parlant.WROTE_AGAIN)
                replies = [{"text": parlant.CONNECTING.format(title=self.host.title)}]
            self.client.create_customer_event(stay.session_id, text)
            return replies
        except parlant.ParlantError as exc:
            raise HostUnavailable(f"{self.host.id}: {exc}") from None

    def open_stay(self, conversation_id: str, reason: str | None) -> db.DeskSession:
        config = current_config()
        conversation = db.find_conversation(self.db, conversation_id)
        from_host = config.find_host(conversation.host_id)
        if from_host is None or from_host.id == self.host.id:
            # Already at the desk (a stay that was closed): name the host the person came from then.
            stays = db.list_conversation_desk_sessions(self.db, conversation_id)
            from_host = config.find_host(stays[-1].from_host) if stays else None
        return parlant.open_stay(self.db, self.client, config, self.host, conversation, from_host, reason)


def adapter_for(
    host: Host, timeout: float, session: requests.Session,
    connection: sqlite3.Connection | None = None, desk_token: str = "",
) -> RasaHost | ParlantHost:
    """Return the adapter that talks to this host."""
    if host.kind == "rasa":
        return RasaHost(host, timeout, session)
    if host.kind == "parlant" and connection is not None:
        return ParlantHost(host, parlant.client_for(host, desk_token, session, timeout), connection)
    raise HostUnavailable(f"{host.id}: kind '{host.kind}' is not served by this chatroom yet")
