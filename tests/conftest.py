"""Fixtures: the real stack (both bots, their action servers, the chatroom) started once per session.

Two settings of it: embedded (SQLite, one chatroom worker, one server per bot)
and scaled (the launcher's --scaled: PostgreSQL and Redis of its own, two
chatroom workers, two replicas of each bot, and the desk). A module marked
``both_settings`` runs each test that uses ``stack`` (or ``desk_stack``) once
on each; every other test gets the embedded stack. Each setting starts once per
session, when a test first needs it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.fakehost import FakeHost
from tests.postgres import MISSING, running_postgres, server_binaries
from tests.stack import Stack, default_config, free_port, running_stack
from tests.test_desk import DESK_TOKEN, OPERATORS

# Tests that run inside the Rasa environment (Python 3.10) live there.
collect_ignore = ["rasa_side"]

SETTINGS = ("embedded", "scaled")
BOTH_SETTINGS = "both_settings"
# The scaled stack's desk; it is in the config only while a test asks for it (see ``desk_in_config``).
DESK_ID = "human"
# What the scaled stack's parts must not inherit from whoever runs the tests.
SCALED_OWN = ("DATABASE_URL", "REDIS_URL", "CHATROOM_WORKERS", "HANDOFF_REPLICAS")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{BOTH_SETTINGS}: run the module's stack tests on the embedded and on the scaled stack"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give each test of a module marked both_settings its stack once per setting."""
    if metafunc.definition.get_closest_marker(BOTH_SETTINGS) is None:
        return
    for name in ("stack", "desk_stack"):
        if name in metafunc.fixturenames:
            scope = "module" if name == "desk_stack" else None
            metafunc.parametrize(name, SETTINGS, indirect=True, scope=scope)


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Stack:
    """The real stack of the test's setting: embedded unless the module runs on both."""
    return request.getfixturevalue(f"{getattr(request, 'param', 'embedded')}_stack")


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the embedded stack once, with a config of its own on free ports, and stop it at the end."""
    scripted = FakeHost("Scripted Desk").start()
    try:
        with running_stack(default_config(scripted.url), tmp_path_factory.mktemp("stack"), scripted) as stack:
            yield stack
    except RuntimeError as exc:
        pytest.fail(str(exc))
    finally:
        scripted.stop()


def desk_host(url: str) -> dict:
    return {"title": "Support team", "url": url, "kind": "parlant"}


def scaled_config(scripted_url: str) -> dict:
    """Return the embedded stack's config plus the desk, on free ports (each bot's also free at +100)."""
    config = default_config(scripted_url)
    config["handoff_hosts"][DESK_ID] = desk_host(f"http://localhost:{free_port(also_free_at=18)}")
    return config


def without_desk(config: dict) -> dict:
    return {**config, "handoff_hosts": {k: v for k, v in config["handoff_hosts"].items() if k != DESK_ID}}


@contextmanager
def desk_in_config(stack: Stack) -> Iterator[Stack]:
    """Put the scaled stack's desk back in its config while the block runs."""
    config = stack.config()
    hosts = {**config["handoff_hosts"], DESK_ID: desk_host(stack.hosts[DESK_ID])}
    stack.write_config({**config, "handoff_hosts": hosts})
    try:
        yield stack
    finally:
        stack.write_config(config)


@pytest.fixture(scope="session")
def scaled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the scaled stack once: our PostgreSQL and Redis, 2 chatroom workers, 2 replicas a bot, the desk.

    The desk starts with it (the launcher starts what the config names) and then
    leaves the config, so the bots offer the same hosts as on the embedded stack.
    """
    scripted = FakeHost("Scripted Desk").start()
    config = scaled_config(scripted.url)
    try:
        with ExitStack() as running:
            # Set for the launch only: the launcher hands its environment on, and other tests keep theirs.
            with pytest.MonkeyPatch.context() as env:
                for name in SCALED_OWN:
                    env.delenv(name, raising=False)
                env.setenv("DESK_API_TOKEN", DESK_TOKEN)
                env.setenv("CHATROOM_DESK_OPERATORS", OPERATORS)
                env.setenv("CHATROOM_DESK_WAIT", "3")
                # The fault tests' people write as fast as they are answered, for as long as a fault lasts.
                env.setenv("CHATROOM_RATE_PER_CONVERSATION", "0")
                root = tmp_path_factory.mktemp("scaled")
                stack = running.enter_context(running_stack(config, root, scripted, scaled=True))
            stack.write_config(without_desk(config))
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
