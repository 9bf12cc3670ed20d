"""A person in headless Chromium (Debian's, driven by Playwright) hands off and reloads."""
from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import send
from tests.stack import Stack
from tests.test_handoff_stack import ASK_FOR_SOMEONE_ELSE

pytestmark = [pytest.mark.stack, pytest.mark.browser, pytest.mark.both_settings]

def test_person_hands_off_in_the_browser_and_keeps_it_across_a_reload(stack: Stack, browser: Browser):
    page = browser.new_page()
    page.goto(stack.chatroom_url)
    expect(page.locator("#host-title")).to_have_text("Helpdesk Assistant")

    send(page, "hi")
    expect(page.locator(".message-user")).to_have_text(["hi"])
    expect(page.locator(".message-bot").first).to_be_visible()
    send(page, ASK_FOR_SOMEONE_ELSE)
    page.get_by_role("button", name="Financial Assistant").click()

    expect(page.locator("#host-title")).to_have_text("Financial Assistant")
    expect(page.locator(".message-notice").last).to_have_text("You are now talking to Financial Assistant.")
    expect(page.locator(".message-bot").last).to_contain_text("Financial Assistant")
    count = page.locator(".message").count()

    page.reload()
    expect(page.locator("#host-title")).to_have_text("Financial Assistant")
    expect(page.locator(".message")).to_have_count(count)
    expect(page.get_by_role("button", name="Financial Assistant")).to_be_disabled()
    page.close()
