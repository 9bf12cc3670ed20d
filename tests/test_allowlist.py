"""A handoff target must be exactly a host of handoff_config.yml: look-alike urls never match."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.config import load_config, normalize_url
from handoff.payload import arrival_message, trigger_message

CONFIG = """\
handoff_hosts:
  helpdesk:
    title: Helpdesk Assistant
    url: http://localhost:5005
  financial:
    title: Financial Assistant
    url: https://bank.example.org:8443/bot
"""

REAL = {"http://localhost:5005": "helpdesk", "https://bank.example.org:8443/bot": "financial"}

# Pieces that make urls look like a real host without being one.
SCHEMES = st.sampled_from(["http", "https", "HTTP", "hTtPs", "javascript", "data", "ftp", "file", ""])
SEPARATORS = st.sampled_from(["://", ":/", ":\\\\", ":", "//", ":///", "://\\", " ://"])
HOSTS = st.sampled_from([
    "localhost", "LOCALHOST", "localhost.", "bank.example.org", "bank.example.org.", "evil.example",
    "localhost@evil.example", "evil.example@localhost", "user:pw@localhost", "xn--bcher-kva.example",
    "bücher.example", "lоcalhost",  # Cyrillic o
    "127.0.0.1", "[::1]", "localhost\\@evil", "bank.example.org%2e", "",
])
PORTS = st.sampled_from(["", ":5005", ":05005", ":5006", ":8443", ":443", ":80", ":99999", ":-1", ":abc"])
PATHS = st.sampled_from(["", "/", "/bot", "/bot/", "/BOT", "/bot/..", "//", "?x=1", "#frag", "/bot?q", " "])


@st.composite
def urls(draw) -> str:
    return draw(SCHEMES) + draw(SEPARATORS) + draw(HOSTS) + draw(PORTS) + draw(PATHS)


def config(tmp_path_factory_dir: Path):
    path = tmp_path_factory_dir / "handoff_config.yml"
    path.write_text(CONFIG)
    return load_config(path)


def expected_host(url: str) -> str | None:
    """Return the host id a url truly names, by an independent whitelist of spellings."""
    match = re.fullmatch(r"(?i)(https?)://([a-z.]+)(:\d+)(/?|/bot/?)", url)
    if match is None:
        return None
    scheme, host, port, path = match.group(1).lower(), match.group(2).lower(), match.group(3), match.group(4)
    host = host[:-1] if host.endswith(".") else host
    port, path = int(port[1:]), path[:-1] if path.endswith("/") else path
    if (scheme, host, port, path) == ("http", "localhost", 5005, ""):
        return "helpdesk"
    if (scheme, host, port, path) == ("https", "bank.example.org", 8443, "/bot"):
        return "financial"
    return None


@settings(max_examples=1500, deadline=None)
@given(url=urls())
def test_only_real_entries_are_accepted(tmp_path_factory, url):
    loaded = config(tmp_path_factory.getbasetemp())
    host = loaded.find_host_by_url(url)
    assert (host.id if host else None) == expected_host(url), url


@given(url=st.text(max_size=60))
@settings(max_examples=1000, deadline=None)
def test_arbitrary_text_never_matches_unless_it_is_a_real_url(tmp_path_factory, url):
    host = config(tmp_path_factory.getbasetemp()).find_host_by_url(url)
    assert host is None or normalize_url(url) == normalize_url(host.url)


@given(value=st.text(max_size=40))
def test_messages_to_bots_are_built_with_a_serializer(value):
    for message, intent, key in ((arrival_message(value), "/handoff", "from_host"),
                                 (trigger_message(value), "/trigger_handoff", "handoff_to")):
        assert message.startswith(intent + "{")
        assert json.loads(message[len(intent):]) == {key: value}


def test_quotes_in_names_stay_data():
    message = trigger_message('evil","from_host":"http://x')
    assert json.loads(message[len("/trigger_handoff"):]) == {"handoff_to": 'evil","from_host":"http://x'}


@pytest.mark.parametrize(
    "url, host_id",
    [
        ("http://localhost:5005", "helpdesk"),
        ("HTTP://LOCALHOST:5005/", "helpdesk"),
        ("http://localhost.:5005", "helpdesk"),
        ("https://bank.example.org:8443/bot/", "financial"),
        ("https://BANK.example.org.:8443/bot", "financial"),
        ("http://localhost:5006", None),
        ("https://localhost:5005", None),
        ("https://bank.example.org:8443/BOT", None),
    ],
)
def test_known_urls(tmp_path, url, host_id):
    host = config(tmp_path).find_host_by_url(url)
    assert (host.id if host else None) == host_id == expected_host(url)
