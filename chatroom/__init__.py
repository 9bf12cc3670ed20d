"""The chatroom: serves the page, holds the routing table and forwards each message to one host."""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from handoff.config import current_config, state_dir

from . import events, routing, settings, shared, stays
from .gates import Gates
from .web import ApiError, cookie_secure


def persistent_secret(path: Path) -> str:
    """Return the cookie-signing key stored at ``path``, creating it on first start.

    Keeping it on disk is what lets a conversation cookie survive a restart.
    Workers start together: the key is written to a file of this process's own
    and linked into place whole, so no worker ever reads a half-written key,
    and the first link wins.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
            os.link(draft, path)
        except FileExistsError:
            pass  # another worker's key is in place
        finally:
            draft.unlink(missing_ok=True)
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


def handle_busy(exc: Exception):
    # A turn lock held too long, or the shared state out of reach: nothing was done, try again.
    return jsonify(error="The chatroom is busy; please try again in a moment."), 503, {"Retry-After": "2"}


def handle_database_unreachable(exc: sa.exc.OperationalError):
    # The database went away mid-request (a restart, a failover): whatever was not committed is not
    # done, the next request reconnects, so the person is asked to try again rather than shown an error.
    logging.getLogger("chatroom").warning(
        "%s %s: the database did not answer (%s); answered 503", request.method, request.path,
        (str(exc.orig or exc).splitlines() or [type(exc).__name__])[0],
    )
    return handle_busy(exc)


def handle_http_error(exc: HTTPException):
    # JSON for the APIs, plain pages elsewhere; never a stack trace.
    if is_api(request.path):
        return jsonify(error=exc.description), exc.code
    return exc


def refuse_large_bodies():
    """Answer 413 from the declared length, before a byte of an oversized body is read."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"Requests are limited to {limit} bytes.")


class ConversationCookies(SecureCookieSessionInterface):
    """The person's signed conversation cookie, marked Secure by COOKIE_SECURE rather than once for all."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return cookie_secure()


def trust_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For, -Proto and -Host from TRUSTED_PROXIES hops, so limits see the real client.

    Off by default: without a proxy that overwrites them, any client could name itself.
    """
    hops = int(app.config["TRUSTED_PROXIES"])
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the chatroom app: defaults, then the environment (see settings.py), then test_config."""
    app = Flask(__name__)
    state = state_dir()
    config = settings.load()
    app.config.from_mapping(
        # A SQLite file path or a database URL: $DATABASE_URL (postgresql://...) if set.
        DATABASE=config["DATABASE_URL"] or str(state / "chatroom.sqlite"),
        SECRET_KEY_FILE=str(state / "chatroom-secret"),
        SESSION_COOKIE_NAME="chatroom",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,
        **config,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = persistent_secret(Path(app.config["SECRET_KEY_FILE"]))
    # Fail at start, not on the first message, if the handoff config is broken.
    current_config()

    from . import console, operators, person, store

    app.session_interface = ConversationCookies()
    trust_proxies(app)
    app.extensions["shared"] = shared.connect(app.config["REDIS_URL"])
    events.init_app(app)
    stays.init_app(app)
    routing.init_app(app)
    app.extensions["gates"] = Gates(int(app.config["HOST_CONCURRENCY"]))
    store.init_app(app)
    app.register_blueprint(person.bp)
    operators.init_app(app)
    app.register_blueprint(console.bp)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(shared.Busy, handle_busy)
    app.register_error_handler(shared.Unavailable, handle_busy)
    app.register_error_handler(sa.exc.OperationalError, handle_database_unreachable)
    app.before_request(refuse_large_bodies)
    app.after_request(add_security_headers)
    logging.getLogger("chatroom").setLevel(logging.INFO)
    return app
