"""Request helpers shared by the person's API and the operator console."""
from __future__ import annotations

import logging
from typing import Any

import requests
import urllib3
from flask import current_app, request

from handoff.config import current_config

from .settings import AUTO

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses, with the status and a sentence for the page."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def read_body() -> dict[str, Any]:
    """Return the request's JSON object, refusing anything else (400).

    JSON only: a form on another site cannot send it, which keeps these POSTs our own.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Send a JSON object.")
    return body


def read_text(body: dict[str, Any]) -> str:
    """Return the stripped 'text' of a request body, refusing empty or overlong text (400)."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "Type a message first.")
    text = text.strip()
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if len(text) > limit:
        raise ApiError(400, f"That message is too long ({len(text)} characters; the limit is {limit}).")
    return text


def read_after() -> int:
    """Return ?after=<message id> (0 when absent), refusing anything but a number (400)."""
    try:
        return int(request.args.get("after", "0"))
    except ValueError:
        raise ApiError(400, "'after' must be a message id.") from None


def host_json(host_id: str) -> dict[str, str]:
    """Return a host's id and title as the pages show them (the id alone if it left the config)."""
    host = current_config().find_host(host_id)
    return {"id": host_id, "title": host.title if host else host_id}


def http_session() -> requests.Session:
    """Return the app's pooled HTTP client for talking to hosts."""
    client = current_app.extensions.get("host_http")
    if client is None:
        client = current_app.extensions["host_http"] = requests.Session()
    return client


def webhook_pool() -> urllib3.PoolManager:
    """Return the app's connection pool for Rasa hosts' REST webhooks.

    A bot turn is one plain POST, so it goes over urllib3 itself: requests'
    own machinery above urllib3 (proxy variables read from the environment,
    settings merged, cookies, hooks) was about a fifth of the chatroom's CPU
    per turn. Retries and redirects are the caller's to decide (hosts.py turns
    both off).
    """
    pool = current_app.extensions.get("webhook_pool")
    if pool is None:
        pool = current_app.extensions["webhook_pool"] = urllib3.PoolManager(
            maxsize=int(current_app.config["MAX_CONNECTIONS"]), retries=False
        )
    return pool


def client_address() -> str:
    """Return the client's address: the peer's, or with TRUSTED_PROXIES the one the proxies name."""
    return request.remote_addr or "unknown"


def over_limit(scope: str, key: str, limit: int, window: float) -> int | None:
    """Count one hit of (scope, key) in the shared limits; return seconds to wait if it is one too many."""
    retry_after = current_app.extensions["shared"].limits.hit(scope, key, int(limit), float(window))
    if retry_after is not None:
        logger.warning("rate limit %s=%s from client %s", scope, key, client_address())
    return retry_after


def refuse_over_limit(scope: str, key: str, limit: int, what: str, window: float | None = None) -> None:
    """Refuse with 429 and Retry-After once (scope, key) goes past ``limit`` in the window.

    ``what`` completes "You are … too fast"; the window is RATE_WINDOW unless given.
    """
    window = float(current_app.config["RATE_WINDOW"]) if window is None else window
    retry_after = over_limit(scope, key, limit, window)
    if retry_after is not None:
        raise ApiError(
            429, f"You are {what} too fast; try again in {retry_after} s.", {"Retry-After": str(retry_after)}
        )


def cookie_secure() -> bool:
    """Tell whether cookies set now are marked Secure (COOKIE_SECURE: auto follows the request's scheme)."""
    setting = current_app.config["COOKIE_SECURE"]
    return request.is_secure if setting == AUTO else bool(setting)
