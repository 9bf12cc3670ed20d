"""Fixtures: the real stack (both bots, their action servers, the chatroom) started once per session."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.fakehost import FakeHost
from tests.postgres import MISSING, running_postgres, server_binaries
from tests.stack import Stack, default_config, running_stack

# Tests that run inside the Rasa environment (Python 3.10) live there.
collect_ignore = ["rasa_side"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the real stack once, with a config of its own on free ports, and stop it at the end."""
    scripted = FakeHost("Scripted Desk").start()
    try:
        with running_stack(default_config(scripted.url), tmp_path_factory.mktemp("stack"), scripted) as stack:
            yield stack
    except RuntimeError as exc:
        pytest.fail(str(exc))
    finally:
        scripted.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Launch Debian's chromium once; each test opens its own pages or contexts."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback; its tests skip, saying why, where none is installed."""
    if server_binaries() is None:
        pytest.skip(MISSING)
    with running_postgres() as url:
        yield url
