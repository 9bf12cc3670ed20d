"""Every chatroom setting in one place: its environment variable, type, default and meaning.

Each is read from ``CHATROOM_<NAME>`` (a few shared ones have their own
names) and parsed explicitly: a value that is not a valid yes/no or number
stops the chatroom at start, naming the variable, instead of being taken as
"set" (Flask's prefixed loader keeps "False" as a non-empty, truthy string).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "CHATROOM_"
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class SettingError(ValueError):
    """A setting with a value the chatroom cannot use; the message names it and the fix."""


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise SettingError(f"{name}={raw!r} is not a yes/no value (use true or false)")


def _number(kind: Callable[[str], Any], what: str, minimum: float) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise SettingError(f"{name}={raw!r} is not {what} (e.g. {name}={kind(minimum)})") from None
        if value < minimum or value != value:
            raise SettingError(f"{name}={raw!r} must be at least {kind(minimum)}")
        return value
    return parse


def parse_text(name: str, raw: str) -> str:
    return raw


AUTO = "auto"


def parse_auto_bool(name: str, raw: str) -> bool | str:
    """Return "auto", True or False: yes/no, or "auto" to let each request decide."""
    if raw.strip().lower() == AUTO:
        return AUTO
    try:
        return parse_bool(name, raw)
    except SettingError:
        raise SettingError(f"{name}={raw!r} is not auto, true or false (use auto)") from None


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    parse: Callable[[str, str], Any]
    help: str
    env: str = ""

    @property
    def variable(self) -> str:
        return self.env or PREFIX + self.key


whole = _number(int, "a whole number", 0)
positive_whole = _number(int, "a whole number", 1)
seconds = _number(float, "a number of seconds", 0)
minutes = _number(float, "a number of minutes", 0)

SETTINGS = (
    Setting("HOST", "127.0.0.1", parse_text, "interface the chatroom listens on"),
    Setting("PORT", 8080, positive_whole, "port the chatroom listens on"),
    Setting("WORKERS", 1, positive_whole, "worker processes (more than 1 needs REDIS_URL)"),
    Setting("MAX_CONNECTIONS", 2000, positive_whole,
            "open connections per worker; live streams stop at 90% to leave room for the rest"),
    Setting("CLIENT_TIMEOUT", 20.0, seconds, "seconds a client may take to send a request"),
    Setting("TURN_TIMEOUT", 5.0, seconds,
            "seconds a turn may take, all host calls included, before the person is told"),
    Setting("HOST_CONCURRENCY", 4, positive_whole, "turns in flight to one host (per worker)"),
    Setting("QUEUE_WAIT", 4.0, seconds,
            "seconds a turn may wait for its host before the person is told it is busy"),
    Setting("ALLOW_COMMANDS", False, parse_bool, "development only: let typed /intent{…} text through"),
    Setting("RATE_PER_CONVERSATION", 30, whole, "messages per window per conversation (0: off)"),
    Setting("RATE_PER_CLIENT", 300, whole,
            "requests per window per client address: messages, streams, polls, leaving, starting over"
            " (0: off)"),
    Setting("RATE_WINDOW", 60.0, seconds, "the rate limits' window in seconds"),
    Setting("NEW_CONVERSATIONS_PER_CLIENT", 10, whole,
            "conversations one client address may start (or start over) per window (0: off)"),
    Setting("READS_PER_CONVERSATION", 60, whole,
            "page loads, live streams and update polls of one conversation per window (0: off)"),
    Setting("TRUSTED_PROXIES", 0, whole,
            "reverse proxies in front of the chatroom whose X-Forwarded-For/-Proto/-Host to believe"),
    Setting("COOKIE_SECURE", AUTO, parse_auto_bool,
            "mark cookies Secure: auto (when the request came over https), true or false"),
    Setting("OPERATOR_IDLE_TIMEOUT", 1800.0, seconds,
            "seconds an operator's login lasts with no console open or used"),
    Setting("OPERATOR_SESSION_LIFETIME", 12 * 3600.0, seconds, "seconds an operator's login lasts at most"),
    Setting("LOGIN_PER_NAME", 5, whole, "login attempts per operator name per login window (0: off)"),
    Setting("LOGIN_PER_CLIENT", 20, whole, "login attempts per client address per login window (0: off)"),
    Setting("LOGIN_WINDOW", 900.0, seconds, "the login limits' window in seconds"),
    Setting("LOGIN_CHECKS", 2, positive_whole, "password checks at once per worker (each takes 32 MiB)"),
    Setting("LOGIN_CHECKS_WAITING", 8, whole,
            "password checks that may wait for one of those per worker; more are answered 503"),
    Setting("MAX_CONTENT_LENGTH", 16 * 1024, positive_whole, "largest request body in bytes"),
    Setting("MAX_MESSAGE_CHARS", 2000, positive_whole, "longest message in characters"),
    Setting("SECRET_KEY", "", parse_text, "signs cookies (default: generated into var/chatroom-secret)"),
    Setting("DESK_OPERATORS", "", parse_text, "operators of /desk: name:password,…"),
    # Each read is a request the desk answers (~14 ms of its CPU; 1,000 people waiting cost the
    # desk half a core at 30 s); an operator's message or the stay's end answers it at once.
    Setting("DESK_WAIT", 300, positive_whole,
            "longest a read of a desk waits for new events, in seconds (each waits half to all of it)"),
    Setting("DESK_NO_ANSWER_AFTER", 120.0, seconds,
            "seconds without a human reply before the person is told"),
    Setting("WATCH_MINUTES", 30.0, minutes,
            "minutes since its last message a conversation with a bot stays listed in the console"),
    # Each heartbeat also re-reads what the page shows (queue place, wait);
    # proxies commonly close a stream idle for 60 s.
    Setting("STREAM_HEARTBEAT", 30.0, seconds, "seconds between keep-alive lines on a live stream"),
    Setting("FAULT", "", parse_text, "tests only: kill the worker once at this point of a handoff"),
    Setting("DESK_API_TOKEN", "", parse_text, "the token the desks want", env="DESK_API_TOKEN"),
    Setting("DATABASE_URL", "", parse_text, "postgresql://… (default: SQLite under var/)",
            env="DATABASE_URL"),
    Setting("REDIS_URL", "", parse_text, "redis://… for state shared by workers (default: in-process)",
            env="REDIS_URL"),
)


def defaults() -> dict[str, Any]:
    """Return every setting's default, keyed as in the app's config."""
    return {setting.key: setting.default for setting in SETTINGS}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the settings given in the environment, parsed; raise SettingError on a bad one."""
    environ = os.environ if environ is None else environ
    found = {}
    for setting in SETTINGS:
        raw = environ.get(setting.variable)
        if raw is not None and (raw.strip() or setting.parse is parse_text):
            found[setting.key] = setting.parse(setting.variable, raw)
    return found


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return every setting: defaults overlaid with the environment."""
    return {**defaults(), **from_environment(environ)}
