"""Load and validate ``handoff_config.yml``: the one list of hosts a person can be handed to.

Imported by the Rasa action servers (Python 3.8-3.10) as well as the chatroom
and the launcher, so it stays free of modern-only syntax.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

import yaml

from handoff.hours import Hours, HoursError, parse_host_hours

CONFIG_ENV = "HANDOFF_CONFIG"
HOST_ID_ENV = "HANDOFF_HOST_ID"
STATE_DIR_ENV = "HANDOFF_STATE_DIR"
REPLICAS_ENV = "HANDOFF_REPLICAS"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "handoff_config.yml"
# A host whose id has a folder here is a bot this machine starts (`make run`).
BOTS_DIR = REPO_ROOT / "bots"

KINDS = ("rasa", "parlant", "a2a")
TOP_LEVEL_KEYS = ("handoff_hosts", "entry")
HOST_KEYS = ("title", "url", "kind", "trusted", "hours", "replicas")
HOST_ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Replica i of a bot listens this many ports above replica i - 1 (5005, 5105, 5205, ...).
REPLICA_PORT_STEP = 100
MAX_REPLICAS = 9

logger = logging.getLogger(__name__)


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
    replicas: int = 1

    @property
    def port(self) -> int:
        """Return the port the host listens on, from its url."""
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_PORTS[parts.scheme]

    @property
    def replica_urls(self) -> Tuple[str, ...]:
        """Return the url of each replica: replica i listens ``REPLICA_PORT_STEP * i`` above the url."""
        parts = urlsplit(self.url)
        name = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        return tuple(
            urlunsplit(parts._replace(netloc=f"{name}:{self.port + REPLICA_PORT_STEP * i}"))
            if i else self.url
            for i in range(self.replicas)
        )

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
    """Return this process's host id: ``$HANDOFF_HOST_ID``, else the name of the folder it runs in.

    A bot's action server runs in ``bots/<id>/`` (``rasa run actions``), so the
    folder name is its id without any setting.
    """
    host_id = os.environ.get(HOST_ID_ENV, "").strip()
    if host_id:
        return host_id
    folder = Path.cwd().name
    if not HOST_ID_PATTERN.match(folder):
        raise ConfigError(
            f"${HOST_ID_ENV} is not set and the folder name '{folder}' is not a host id "
            "(run from bots/<id>/, or set HANDOFF_HOST_ID=helpdesk)"
        )
    return folder


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
    default_replicas = _default_replicas()
    hosts = tuple(
        _parse_host(host_id, raw, path, default_replicas) for host_id, raw in raw_hosts.items()
    )
    seen: Dict[str, Host] = {}
    for host in hosts:
        for url in host.replica_urls:
            key = normalize_url(url) or url
            other = seen.setdefault(key, host)
            if other is host:
                continue
            if host.replicas == other.replicas == 1:
                raise ConfigError(
                    f"{path}: hosts '{other.id}' and '{host.id}' have the same url {url} "
                    "(give each host its own port)"
                )
            raise ConfigError(
                f"{path}: hosts '{other.id}' and '{host.id}' both use {url} (give each host its own "
                f"port; replica i of a host listens {REPLICA_PORT_STEP} * i above its url)"
            )
    entry = data.get("entry", hosts[0].id)
    if not isinstance(entry, str) or entry not in {h.id for h in hosts}:
        raise ConfigError(
            f"{path}: entry '{entry}' is not a host in handoff_hosts "
            f"(use one of: {', '.join(h.id for h in hosts)})"
        )
    return HandoffConfig(path=path, hosts=hosts, entry=entry)


def _default_replicas() -> int:
    """Return ``$HANDOFF_REPLICAS`` (replicas of each local bot that sets none), 1 when unset."""
    raw = os.environ.get(REPLICAS_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_REPLICAS:
        raise ConfigError(f"${REPLICAS_ENV} is '{raw}' (use a whole number from 1 to {MAX_REPLICAS})")
    return int(raw)


def _parse_replicas(raw: Dict[str, Any], where: str, kind: str, url: str, default: int) -> int:
    replicas = raw.get("replicas", default)
    if "replicas" in raw and kind != "rasa":
        raise ConfigError(f"{where} has replicas, which only a kind: rasa host can have (remove it)")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise ConfigError(
            f"{where} has replicas '{replicas}' (use a whole number from 1 to {MAX_REPLICAS})"
        )
    parts = urlsplit(url)
    top = (parts.port or DEFAULT_PORTS[parts.scheme]) + REPLICA_PORT_STEP * (replicas - 1)
    if top > 65535:
        raise ConfigError(
            f"{where} has {replicas} replicas, so the last would need port {top} "
            "(use fewer replicas or a lower port)"
        )
    return replicas


def _parse_host(host_id: Any, raw: Any, path: Path, default_replicas: int = 1) -> Host:
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
    # $HANDOFF_REPLICAS only widens the bots this machine starts; a remote host keeps one url.
    default = default_replicas if kind == "rasa" and (BOTS_DIR / host_id).is_dir() else 1
    replicas = _parse_replicas(raw, where, kind, url, default)
    try:
        hours = parse_host_hours(raw, kind, where)
    except HoursError as exc:
        raise ConfigError(str(exc)) from None
    return Host(
        id=host_id, title=title.strip(), url=url.rstrip("/"), kind=kind, trusted=trusted,
        hours=hours, replicas=replicas,
    )


@dataclass(frozen=True)
class ConfigProblem:
    """Why the file on disk is not the config in force: the last good one is kept meanwhile."""

    path: Path
    message: str


@dataclass(frozen=True)
class _Loaded:
    stamp: Tuple[int, int]
    config: HandoffConfig
    problem: Optional[ConfigProblem]


_cache_lock = threading.Lock()
_cache: Dict[Path, _Loaded] = {}


def _stamp(path: Path) -> Tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


def current_config(path: Optional[Path] = None) -> HandoffConfig:
    """Return the config, re-reading the file only when it changed on disk.

    This is what lets a host added to the file be offered and routed to without
    restarting anything. A file that no longer loads (say, half saved by an
    editor) leaves the last good config in force; ``config_problem()`` then says
    what is wrong. The first load of a process still fails loudly.
    """
    path = Path(path) if path is not None else config_path()
    stamp = _stamp(path)
    with _cache_lock:
        loaded = _cache.get(path)
        if loaded is not None and loaded.stamp == stamp:
            return loaded.config
    try:
        config = load_config(path)
    except ConfigError as exc:
        if loaded is None:
            raise
        problem = ConfigProblem(path=path, message=str(exc))
        if problem != loaded.problem:
            logger.error("keeping the last good handoff config: %s", problem.message)
        with _cache_lock:
            _cache[path] = _Loaded(stamp, loaded.config, problem)
        return loaded.config
    with _cache_lock:
        if loaded is not None and loaded.problem is not None:
            logger.info("%s loads again; its hosts are in force", path)
        _cache[path] = _Loaded(stamp, config, None)
    return config


def config_problem(path: Optional[Path] = None) -> Optional[ConfigProblem]:
    """Return why the config file on disk is not in force, or None when it is.

    The message names the file, the key and what is wrong, as ``ConfigError`` does.
    A process can show it (the chatroom's console does) while the last good
    config keeps serving.
    """
    path = Path(path) if path is not None else config_path()
    try:
        current_config(path)
    except ConfigError as exc:
        return ConfigProblem(path=path, message=str(exc))
    with _cache_lock:
        loaded = _cache.get(path)
    return loaded.problem if loaded is not None else None


def main() -> int:
    """Check the config file and print its hosts (``python -m handoff.config``)."""
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for host in config.hosts:
        marker = " (entry)" if host.id == config.entry else ""
        if host.replicas > 1:
            marker += f" ({host.replicas} replicas: {', '.join(host.replica_urls[1:])} too)"
        print(f"{host.id:<16} {host.kind:<8} {host.url:<28} {host.title}{marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
