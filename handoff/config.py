"""Load and validate ``handoff_config.yml``: the one list of hosts a person can be handed to.

Imported by the Rasa action servers (Python 3.8-3.10) as well as the chatroom
and the launcher, so it stays free of modern-only syntax.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import yaml

from handoff.hours import Hours, HoursError, parse_host_hours

CONFIG_ENV = "HANDOFF_CONFIG"
HOST_ID_ENV = "HANDOFF_HOST_ID"
STATE_DIR_ENV = "HANDOFF_STATE_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "handoff_config.yml"

KINDS = ("rasa", "parlant", "a2a")
TOP_LEVEL_KEYS = ("handoff_hosts", "entry")
HOST_KEYS = ("title", "url", "kind", "trusted", "hours")
HOST_ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
DEFAULT_PORTS = {"http": 80, "https": 443}


class ConfigError(ValueError):
    """A handoff config that cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Host:
    """One place a conversation can be handed to."""

    id: str
    title: str
    url: str
    kind: str = "rasa"
    # Whether personal data in a handoff envelope may reach this host unmasked.
    trusted: bool = False
    # When a desk (kind: parlant) is staffed; None: always.
    hours: Optional[Hours] = None

    @property
    def port(self) -> int:
        """Return the port the host listens on, from its url."""
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_PORTS[parts.scheme]

    @property
    def hostname(self) -> str:
        """Return the host name of the url (``localhost``, ``127.0.0.1``, ...)."""
        return urlsplit(self.url).hostname or ""


@dataclass(frozen=True)
class HandoffConfig:
    """The validated content of one handoff config file."""

    path: Path
    hosts: Tuple[Host, ...]
    entry: str

    @property
    def entry_host(self) -> Host:
        """Return the host that greets a new conversation."""
        return self.get_host(self.entry)

    def find_host(self, host_id: Optional[str]) -> Optional[Host]:
        """Return the host with this id, or None."""
        for host in self.hosts:
            if host.id == host_id:
                return host
        return None

    def get_host(self, host_id: str) -> Host:
        """Return the host with this id or raise ConfigError."""
        host = self.find_host(host_id)
        if host is None:
            known = ", ".join(h.id for h in self.hosts)
            raise ConfigError(f"{self.path}: no host '{host_id}' in handoff_hosts (known: {known})")
        return host

    def find_host_by_url(self, url: Optional[str]) -> Optional[Host]:
        """Return the host whose url matches ``url`` once both are normalised, or None."""
        wanted = normalize_url(url) if isinstance(url, str) else None
        if wanted is None:
            return None
        for host in self.hosts:
            if normalize_url(host.url) == wanted:
                return host
        return None

    def other_hosts(self, host_id: Optional[str]) -> Tuple[Host, ...]:
        """Return every host except the one with this id, in file order."""
        return tuple(host for host in self.hosts if host.id != host_id)


def normalize_url(url: str) -> Optional[str]:
    """Return ``scheme://host:port/path`` for a plain http(s) url, or None for anything else.

    Userinfo, queries, fragments, backslashes and whitespace are refused rather
    than cleaned, so a look-alike url never matches a real host.
    """
    if not url or any(ch.isspace() or ch == "\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or parts.username is not None or parts.password is not None:
        return None
    if parts.query or parts.fragment or "@" in parts.netloc:
        return None
    hostname = (parts.hostname or "").rstrip(".")
    if not hostname or not hostname.isascii():
        return None
    # One trailing slash is the same url; "//" is not.
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path
    return f"{scheme}://{hostname.lower()}:{port or DEFAULT_PORTS[scheme]}{path}"


def config_path() -> Path:
    """Return the config path: ``$HANDOFF_CONFIG`` or ``handoff_config.yml`` at the repo root."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def state_dir() -> Path:
    """Return the folder for runtime state (databases, keys): ``$HANDOFF_STATE_DIR`` or var/."""
    return Path(os.environ.get(STATE_DIR_ENV) or REPO_ROOT / "var").resolve()


def own_host_id() -> str:
    """Return this process's host id from ``$HANDOFF_HOST_ID``."""
    host_id = os.environ.get(HOST_ID_ENV, "").strip()
    if not host_id:
        raise ConfigError(
            f"${HOST_ID_ENV} is not set (set it to this bot's id in handoff_config.yml, "
            "e.g. HANDOFF_HOST_ID=helpdesk; `make run` does this for you)"
        )
    return host_id


def load_config(path: Optional[Path] = None) -> HandoffConfig:
    """Read and validate a handoff config file; raise ConfigError naming what is wrong."""
    path = Path(path) if path is not None else config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found (create it as shown in README.md, or set ${CONFIG_ENV})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line} (check indentation and quoting)") from None
    return parse_config(data, path)


def parse_config(data: Any, path: Path) -> HandoffConfig:
    """Validate already-parsed YAML data; raise ConfigError naming the key and the fix."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'handoff_hosts' key at the top level")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"{path}: unknown key '{key}' at the top level (allowed: {', '.join(TOP_LEVEL_KEYS)})"
            )
    raw_hosts = data.get("handoff_hosts")
    if not isinstance(raw_hosts, dict) or not raw_hosts:
        raise ConfigError(
            f"{path}: 'handoff_hosts' must map host ids to hosts "
            "(add handoff_hosts: {helpdesk: {title: ..., url: http://localhost:5005}})"
        )
    hosts = tuple(_parse_host(host_id, raw, path) for host_id, raw in raw_hosts.items())
    seen: Dict[str, str] = {}
    for host in hosts:
        key = normalize_url(host.url) or host.url
        if key in seen:
            raise ConfigError(
                f"{path}: hosts '{seen[key]}' and '{host.id}' have the same url {host.url} "
                "(give each host its own port)"
            )
        seen[key] = host.id
    entry = data.get("entry", hosts[0].id)
    if not isinstance(entry, str) or entry not in {h.id for h in hosts}:
        raise ConfigError(
            f"{path}: entry '{entry}' is not a host in handoff_hosts "
            f"(use one of: {', '.join(h.id for h in hosts)})"
        )
    return HandoffConfig(path=path, hosts=hosts, entry=entry)


def _parse_host(host_id: Any, raw: Any, path: Path) -> Host:
    if not isinstance(host_id, str) or not HOST_ID_PATTERN.match(host_id):
        raise ConfigError(
            f"{path}: host id '{host_id}' is not valid (use lower-case letters, digits and _, "
            "starting with a letter, e.g. billing_bot)"
        )
    where = f"{path}: host '{host_id}'"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with title and url")
    for key in raw:
        if key not in HOST_KEYS:
            raise ConfigError(f"{where} has unknown key '{key}' (allowed: {', '.join(HOST_KEYS)})")
    url = raw.get("url")
    if not url:
        raise ConfigError(f"{where} has no url (add url: http://host:port)")
    if not isinstance(url, str) or normalize_url(url) is None:
        raise ConfigError(
            f"{where} has url '{url}', which is not a plain http(s) url (use e.g. http://localhost:5007)"
        )
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(f"{where} has no title (add title: the name shown to the person)")
    kind = raw.get("kind", "rasa")
    if kind not in KINDS:
        raise ConfigError(f"{where} has kind '{kind}' (use one of: {', '.join(KINDS)})")
    trusted = raw.get("trusted", False)
    if not isinstance(trusted, bool):
        raise ConfigError(f"{where} has trusted: {trusted!r} (use true or false)")
    try:
        hours = parse_host_hours(raw, kind, where)
    except HoursError as exc:
        raise ConfigError(str(exc)) from None
    return Host(
        id=host_id, title=title.strip(), url=url.rstrip("/"), kind=kind, trusted=trusted, hours=hours
    )


_cache_lock = threading.Lock()
_cache: Dict[Path, Tuple[Tuple[int, int], HandoffConfig]] = {}


def current_config(path: Optional[Path] = None) -> HandoffConfig:
    """Return the config, re-reading the file only when it changed on disk.

    This is what lets a host added to the file be offered and routed to without
    restarting anything.
    """
    path = Path(path) if path is not None else config_path()
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = (-1, -1)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    config = load_config(path)
    with _cache_lock:
        _cache[path] = (stamp, config)
    return config


def main() -> int:
    """Check the config file and print its hosts (``python -m handoff.config``)."""
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for host in config.hosts:
        marker = " (entry)" if host.id == config.entry else ""
        print(f"{host.id:<16} {host.kind:<8} {host.url:<28} {host.title}{marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
