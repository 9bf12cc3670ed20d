"""Parlant's HTTP API, as the chatroom uses it: sessions, events, agents; nothing else.

A desk (a host of ``kind: parlant``) is a Parlant server whose sessions are in
manual mode. What the chatroom does with them (a person's stay, the relay of
operator messages) lives in ``stays.py``; this module only speaks Parlant's
vocabulary: session, customer, agent, event, ``mode``, ``source``.
"""
from __future__ import annotations

from typing import Any

import requests

from handoff.config import Host

HUMAN_AGENT = "human_agent"
HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT = "human_agent_on_behalf_of_ai_agent"
OPERATOR_SOURCES = (HUMAN_AGENT, HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT)
MANUAL = "manual"
# Seconds on top of a long-poll's wait before the HTTP call itself gives up.
WAIT_MARGIN = 5.0


class ParlantError(Exception):
    """A Parlant desk did not answer usably: down, slow, refused or an unexpected reply."""


class Parlant:
    """A client for one Parlant server's REST API, with the desk token and timeouts."""

    def __init__(self, url: str, token: str, http: requests.Session, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.http = http
        self.timeout = timeout

    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict | None = None,
        timeout: float | None = None, ok: tuple[int, ...] = (200, 201),
    ) -> requests.Response:
        url = f"{self.url}{path}"
        try:
            # A redirect would carry the person's words, and perhaps the token, somewhere unnamed.
            response = self.http.request(
                method, url, json=json, params=params, timeout=timeout or self.timeout,
                headers={"Authorization": f"Bearer {self.token}"}, allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ParlantError(f"{method} {url}: {type(exc).__name__}") from None
        if response.is_redirect:
            raise ParlantError(
                f"{method} {url}: answered HTTP {response.status_code}, a redirect, which is never followed "
                "(set the desk's url in handoff_config.yml to where it really answers)"
            )
        if response.status_code not in ok:
            # Refusals are not quoted: a stock Parlant echoes the request headers, token included.
            detail = "" if response.status_code in (401, 403) else f" {response.text[:200]}"
            raise ParlantError(f"{method} {url}: HTTP {response.status_code}{detail}")
        return response

    def _json(self, *args: Any, **kwargs: Any) -> Any:
        response = self._call(*args, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ParlantError(f"{args[0]} {self.url}{args[1]}: reply is not JSON") from None

    def list_agents(self) -> list[dict[str, Any]]:
        return self._json("GET", "/agents")

    def create_session(
        self, *, agent_id: str, title: str, metadata: dict[str, Any], labels: list[str] | None = None
    ) -> dict[str, Any]:
        """Create a guest session (Parlant never greets unless asked to)."""
        body = {"agent_id": agent_id, "title": title, "metadata": metadata, "labels": labels or []}
        return self._json("POST", "/sessions", json=body)

    def read_session(self, session_id: str) -> dict[str, Any]:
        return self._json("GET", f"/sessions/{session_id}")

    def update_session(
        self, session_id: str, *, mode: str | None = None, metadata: dict[str, Any] | None = None,
        labels: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if mode is not None:
            body["mode"] = mode
        if metadata is not None:
            body["metadata"] = {"set": metadata, "unset": []}
        if labels is not None:
            body["labels"] = {"upsert": labels, "remove": []}
        return self._json("PATCH", f"/sessions/{session_id}", json=body)

    def create_customer_event(self, session_id: str, message: str) -> dict[str, Any]:
        body = {"kind": "message", "source": "customer", "message": message}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_human_agent_event(self, session_id: str, message: str, display_name: str) -> dict[str, Any]:
        body = {
            "kind": "message", "source": HUMAN_AGENT, "message": message,
            "participant": {"display_name": display_name},
        }
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_human_agent_on_behalf_of_ai_agent_event(self, session_id: str, message: str) -> dict[str, Any]:
        body = {"kind": "message", "source": HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT, "message": message}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_custom_event(self, session_id: str, data: dict[str, Any]) -> dict[str, Any]:
        body = {"kind": "custom", "source": "system", "data": data}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def create_status_event(
        self, session_id: str, status: str, source: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Post a status event ("typing", "ready") from an operator's source; Parlant never acts on it."""
        body = {"kind": "status", "source": source, "status": status, "data": data}
        return self._json("POST", f"/sessions/{session_id}/events", json=body)

    def list_events(
        self, session_id: str, *, min_offset: int, wait_for_data: int = 0
    ) -> list[dict[str, Any]]:
        """Return the session's events from ``min_offset`` on, waiting up to ``wait_for_data`` s for one."""
        response = self._call(
            "GET", f"/sessions/{session_id}/events",
            params={"min_offset": min_offset, "wait_for_data": wait_for_data},
            timeout=max(self.timeout, wait_for_data + WAIT_MARGIN),
            ok=(200, 504),
        )
        if response.status_code == 504:
            # Parlant's long poll answers 504 when nothing arrived in time.
            return []
        try:
            events = response.json()
        except ValueError:
            raise ParlantError(f"GET {response.url}: reply is not JSON") from None
        if not isinstance(events, list):
            raise ParlantError(f"GET {response.url}: reply is not a list of events")
        return events


def client_for(host: Host, token: str, http: requests.Session, timeout: float) -> Parlant:
    return Parlant(host.url, token, http, timeout)
