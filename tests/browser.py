"""Driving Debian's chromium with Playwright: shared by the browser tests and scripts/screenshots.py."""
from __future__ import annotations

from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
# Background networking would try (and fail) to reach the internet on every start.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def send(page: Page, text: str) -> None:
    """Type a message into the chatroom page and send it."""
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
