"""Operator accounts and logins: who may use the console, how a login is checked, kept and ended.

Operators come from ``DESK_OPERATORS`` ("alice:secret,bob:pw", set with
$CHATROOM_DESK_OPERATORS). Each password is turned into a scrypt digest when the
app starts (32 MiB and about 0.16 s of CPU each), and a login attempt is checked
against it; an unknown name is checked against a digest that matches nothing,
so a wrong name costs as long as a wrong password.

A login is a row on the server (store: ``operator_session``) named by a random
token in its own cookie (``chatroom_operator``, path /desk, HttpOnly,
SameSite=Strict). It ends at logout, after OPERATOR_SESSION_LIFETIME, after
OPERATOR_IDLE_TIMEOUT with no console open or used, and as soon as the
operator's password in DESK_OPERATORS is another one than it was made with
(each row keeps a fingerprint of the digest).

Attempts are limited before any password is checked: LOGIN_PER_NAME per name
and LOGIN_PER_CLIENT per client address in LOGIN_WINDOW, counted in the state
workers share (a login that succeeds clears its name's count). Each worker runs
at most LOGIN_CHECKS checks at once, on native threads so the worker keeps
serving meanwhile, and lets LOGIN_CHECKS_WAITING more wait; past that, 503.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import gevent
from flask import Flask, Response, current_app, g, request
from gevent import monkey

from . import store
from .web import client_address, cookie_secure, over_limit

logger = logging.getLogger(__name__)

COOKIE = "chatroom_operator"
COOKIE_PATH = "/desk"
# scrypt with werkzeug's default cost: 2**15 * 8 * 128 bytes = 32 MiB per check.
SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
# Longer names are cut before they name a rate limit (no operator is called that).
NAME_KEY_CHARS = 200
# A login's last-seen time is written at most this often (seconds), not on every request.
SEE_EVERY = 60.0
WRONG = "That name and password do not match an operator."
TOO_MANY = "Too many login attempts; try again in {minutes} min."
BUSY = "The desk is busy checking logins; try again in a moment."

T = TypeVar("T")


class LoginRefused(Exception):
    """A login attempt not even checked: too many attempts (429) or too many checks at once (503)."""

    def __init__(self, status: int, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class Account:
    """An operator's password digest, and the fingerprint of it that each of their logins keeps."""

    salt: bytes
    digest: bytes

    @property
    def fingerprint(self) -> str:
        # Derived from the slow digest, so the stored fingerprint is no quicker to guess against.
        return hashlib.sha256(b"operator-login:" + self.digest).hexdigest()

    def matches(self, password: str) -> bool:
        attempt = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=self.salt, **SCRYPT)
        return hmac.compare_digest(attempt, self.digest)


def parse_operators(value: Any) -> dict[str, str]:
    """Return {name: password} from "alice:secret,bob:pw" or an already-made mapping."""
    if isinstance(value, dict):
        return {str(name): str(password) for name, password in value.items()}
    operators = {}
    for entry in str(value or "").split(","):
        name, sep, password = entry.strip().partition(":")
        if not entry.strip():
            continue
        if not sep or not name or not password:
            raise ValueError(
                f"DESK_OPERATORS entry '{name or entry.strip()}' is not name:password "
                "(set CHATROOM_DESK_OPERATORS=alice:secret,bob:pw)"
            )
        operators[name] = password
    return operators


def make_account(secret_key: str, name: str, password: str) -> Account:
    """Return the account for a name and password; the same on every worker and after a restart.

    The salt comes from the app's secret key and the name, so every worker
    derives the same digest, and a login made before a restart still matches.
    """
    salt = hmac.new(secret_key.encode(), b"operator-salt:" + name.encode(), hashlib.sha256).digest()[:16]
    return Account(salt, hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, **SCRYPT))


def off_the_loop(function: Callable[..., T], *args: Any) -> T:
    """Run a CPU-heavy call that releases the GIL on a native thread under gevent, so the worker serves on."""
    if monkey.is_module_patched("threading"):
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


class PasswordChecks:
    """At most ``at_once`` password checks run at a time in this worker; ``waiting`` more may queue."""

    def __init__(self, at_once: int, waiting: int) -> None:
        self.slots = threading.BoundedSemaphore(at_once)
        self.room = at_once + waiting
        self.inside = 0
        self.guard = threading.Lock()

    def check(self, account: Account, password: str) -> bool:
        with self.guard:
            if self.inside >= self.room:
                logger.warning("login from %s refused: %d password checks already here", client_address(),
                               self.inside)
                raise LoginRefused(503, BUSY, 2)
            self.inside += 1
        try:
            with self.slots:
                return off_the_loop(account.matches, password)
        finally:
            with self.guard:
                self.inside -= 1


def init_app(app: Flask) -> None:
    """Derive every operator's digest once, at start, and set up this worker's password checks."""
    operators = parse_operators(app.config.get("DESK_OPERATORS"))
    app.extensions["operator_accounts"] = {
        name: make_account(app.config["SECRET_KEY"], name, password) for name, password in operators.items()
    }
    app.extensions["operator_nobody"] = Account(secrets.token_bytes(16), secrets.token_bytes(SCRYPT["dklen"]))
    app.extensions["password_checks"] = PasswordChecks(
        int(app.config["LOGIN_CHECKS"]), int(app.config["LOGIN_CHECKS_WAITING"])
    )
    if not operators:
        logging.getLogger("chatroom").info("no operators configured: /desk accepts no login")


def names() -> list[str]:
    """Return every configured operator's name, sorted."""
    return sorted(current_app.extensions["operator_accounts"])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def refuse_too_many(name: str) -> None:
    """Count an attempt against its client address and its name; raise LoginRefused (429) past either."""
    window = float(current_app.config["LOGIN_WINDOW"])
    for scope, key, limit in (
        ("login-client", client_address(), current_app.config["LOGIN_PER_CLIENT"]),
        ("login-name", name[:NAME_KEY_CHARS], current_app.config["LOGIN_PER_NAME"]),
    ):
        retry_after = over_limit(scope, key, limit, window)
        if retry_after is not None:
            raise LoginRefused(429, TOO_MANY.format(minutes=max(1, round(retry_after / 60))), retry_after)


def log_in(name: str, password: str) -> str | None:
    """Check an attempt within the limits; return a new login's token, or None if it does not match.

    Raises LoginRefused, with no password checked, when the limits say no.
    """
    refuse_too_many(name)
    accounts = current_app.extensions["operator_accounts"]
    account = accounts.get(name)
    checks: PasswordChecks = current_app.extensions["password_checks"]
    matches = checks.check(account or current_app.extensions["operator_nobody"], password)
    if account is None or not matches:
        logger.warning("failed operator login for %r from %s", name[:NAME_KEY_CHARS], client_address())
        return None
    current_app.extensions["shared"].limits.reset("login-name", name[:NAME_KEY_CHARS])
    db = store.get_db()
    now = time.time()
    earlier = request.cookies.get(COOKIE)
    if earlier:
        store.end_operator_session(db, token_hash(earlier))
    token = secrets.token_urlsafe(32)
    lifetime = float(current_app.config["OPERATOR_SESSION_LIFETIME"])
    store.create_operator_session(db, token_hash(token), name, account.fingerprint, now, now + lifetime)
    store.end_lapsed_operator_sessions(db, now, now - float(current_app.config["OPERATOR_IDLE_TIMEOUT"]))
    logger.info("operator %s logged in from %s", name, client_address())
    return token


def lasting_session(hashed: str) -> store.OperatorSession | None:
    """Return the login if it still holds, recording that it was used; end it (and return None) if not."""
    db = store.get_db()
    found = store.find_operator_session(db, hashed)
    if found is None:
        return None
    now = time.time()
    idle = float(current_app.config["OPERATOR_IDLE_TIMEOUT"])
    account = current_app.extensions["operator_accounts"].get(found.operator)
    if account is None or not hmac.compare_digest(found.password_fingerprint, account.fingerprint):
        ended = "the operator's password changed"
    elif now >= found.expires_at:
        ended = "it reached OPERATOR_SESSION_LIFETIME"
    elif now - found.last_seen_at >= idle:
        ended = "it was idle for OPERATOR_IDLE_TIMEOUT"
    else:
        if now - found.last_seen_at >= min(SEE_EVERY, idle / 10):
            store.see_operator_session(db, hashed, now)
        return found
    store.end_operator_session(db, hashed)
    logger.info("operator %s's login ended: %s", found.operator, ended)
    return None


def signed_in() -> str | None:
    """Return the operator this request's login cookie names while that login holds, else None."""
    token = request.cookies.get(COOKIE)
    found = lasting_session(token_hash(token)) if token else None
    if found is None:
        return None
    g.operator = found.operator
    g.operator_login = found.token_hash
    return found.operator


def current() -> str:
    """Return the operator of this request (require a login first)."""
    return g.operator


def log_out() -> None:
    """End this request's login on the server."""
    token = request.cookies.get(COOKIE)
    if token:
        store.end_operator_session(store.get_db(), token_hash(token))


def set_cookie(response: Response, token: str) -> Response:
    response.set_cookie(
        COOKIE, token, max_age=int(current_app.config["OPERATOR_SESSION_LIFETIME"]), path=COOKIE_PATH,
        secure=cookie_secure(), httponly=True, samesite="Strict",
    )
    return response


def forget_cookie(response: Response) -> Response:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=cookie_secure(), httponly=True, samesite="Strict")
    return response


def while_signed_in(response: Response) -> Response:
    """Pass a console stream on while its login holds (it counts as use); end it once the login ended."""
    app = current_app._get_current_object()
    hashed = g.operator_login
    inner = response.response

    def guarded() -> Iterator[Any]:
        try:
            for chunk in inner:
                with app.app_context():
                    holds = lasting_session(hashed) is not None
                if not holds:
                    return
                yield chunk
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    response.response = guarded()
    return response
