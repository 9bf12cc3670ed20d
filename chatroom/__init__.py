"""The chatroom: serves the page, holds the routing table and forwards each message to one host."""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from handoff.config import current_config, state_dir

from .limits import RateLimiter
from .web import ApiError


def persistent_secret(path: Path) -> str:
    """Return the cookie-signing key stored at ``path``, creating it on first start.

    Keeping it on disk is what lets a conversation cookie survive a restart.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip()


# The page loads only its own scripts and styles; bot images may come from any web origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' https: http:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def add_security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def is_api(path: str) -> bool:
    return path.startswith(("/api/", "/desk/api/"))


def handle_api_error(exc: ApiError):
    return jsonify(error=exc.message), exc.status, exc.headers


def handle_http_error(exc: HTTPException):
    # JSON for the APIs, plain pages elsewhere; never a stack trace.
    if is_api(request.path):
        return jsonify(error=exc.description), exc.code
    return exc


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the chatroom app: defaults, then CHATROOM_* environment variables, then test_config."""
    app = Flask(__name__)
    state = state_dir()
    app.config.from_mapping(
        # A SQLite file path or a database URL: $DATABASE_URL (postgresql://...) if set.
        DATABASE=os.environ.get("DATABASE_URL") or str(state / "chatroom.sqlite"),
        SECRET_KEY_FILE=str(state / "chatroom-secret"),
        # Seconds a turn may take, all host calls included, before the person is told
        # a host is unavailable.
        TURN_TIMEOUT=5.0,
        # Typed text starting with "/" is sent as plain text unless this is on (development only).
        ALLOW_COMMANDS=False,
        # Messages allowed per window, per conversation and per client address; 0 turns a limit off.
        RATE_PER_CONVERSATION=30,
        RATE_PER_CLIENT=300,
        RATE_WINDOW=60.0,
        MAX_CONTENT_LENGTH=16 * 1024,
        MAX_MESSAGE_CHARS=2000,
        SESSION_COOKIE_NAME="chatroom",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,
        # The token a human desk (kind: parlant) wants; the launcher gives the same one to both.
        DESK_API_TOKEN=os.environ.get("DESK_API_TOKEN", ""),
        # Operators allowed into /desk: "alice:secret,bob:pw" ($CHATROOM_DESK_OPERATORS).
        DESK_OPERATORS="",
        # Seconds a long poll waits for an operator's (or the person's) next message.
        DESK_WAIT=20,
        # Seconds without a human reply before the person is told and offered to go back.
        DESK_NO_ANSWER_AFTER=120,
    )
    app.config.from_prefixed_env("CHATROOM")
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = persistent_secret(Path(app.config["SECRET_KEY_FILE"]))
    # Fail at start, not on the first message, if the handoff config is broken.
    current_config()

    from . import console, person, store

    window = float(app.config["RATE_WINDOW"])
    app.extensions["rate_limits"] = {
        "conversation": RateLimiter(int(app.config["RATE_PER_CONVERSATION"]), window),
        "client": RateLimiter(int(app.config["RATE_PER_CLIENT"]), window),
    }
    store.init_app(app)
    app.register_blueprint(person.bp)
    console.init_app(app)
    app.register_blueprint(console.bp)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.after_request(add_security_headers)
    logging.getLogger("chatroom").setLevel(logging.INFO)
    return app
