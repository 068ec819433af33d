"""Alerts and tabs in the agent client (real Chromium): the unread count in the tab's title, desktop
notifications asked for from a button (never on load) and a sound, for a message she is not looking at;
a reload opens the same conversation again; logging out in one tab logs out every tab (issue 11,
points 2 and 8)."""
from __future__ import annotations

import asyncio

import pytest

from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.browser.ui import log_in
from tests.conftest import ALICE, CUSTOMER

pytestmark = pytest.mark.browser
OTHER = "+12125550198"
# The page's Notification, recorded: what was shown, and whether permission was asked (and when). A permission
# given is kept across reloads, as the browser keeps it for the site.
NOTIFICATIONS = """
window.__notes = []; window.__asked = 0;
class RecordedNotification {
  constructor(title, options) { window.__notes.push({ title, body: options && options.body }); }
  close() {}
  static requestPermission() {
    window.__asked += 1; RecordedNotification.permission = "granted"; sessionStorage.setItem("granted", "1");
    return Promise.resolve("granted");
  }
}
RecordedNotification.permission = sessionStorage.getItem("granted") ? "granted" : "default";
window.Notification = RecordedNotification;
"""


async def notes(page, count: int) -> None:
    """Wait until `count` notifications were shown (polled from here: the page's CSP forbids eval)."""
    async def shown() -> bool:
        return await page.evaluate("window.__notes.length") >= count

    deadline = asyncio.get_running_loop().time() + LIVE / 1000
    while not await shown():
        assert asyncio.get_running_loop().time() < deadline, f"{count} notifications not shown in time"
        await asyncio.sleep(0.05)


async def test_title_notifications_sound_and_a_reload_that_keeps_the_conversation(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    await context.add_init_script(NOTIFICATIONS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await log_in(page, server, ready=True)
        assert await page.evaluate("window.__asked") == 0  # nothing asked on load
        await expect(page).to_have_title("didchat")

        await page.get_by_test_id("alerts").click()
        await expect(page.get_by_test_id("alerts")).to_have_attribute("aria-pressed", "true")
        assert await page.evaluate("window.__asked") == 1
        await page.get_by_test_id("alert-sound").click()
        await expect(page.get_by_test_id("alert-sound")).to_have_attribute("aria-pressed", "true")

        assert (await server.simulate_sms(CUSTOMER, ALICE, "is my order ready?"))[0] == 200
        await expect(page).to_have_title("(1) didchat", timeout=LIVE)
        await notes(page, 1)
        assert await page.evaluate("window.__notes") == [{"title": "(212) 555-0199", "body": "is my order ready?"}]  # as the list shows it
        await expect(page.get_by_test_id("alert-sound")).to_have_attribute("data-played", "1")

        item = page.locator(f'[data-testid="conversation-item"][data-contact="{CUSTOMER}"]')
        await item.click()
        await expect(page).to_have_title("didchat", timeout=LIVE)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "and the invoice?"))[0] == 200  # the one she is reading
        transcript = page.get_by_test_id("transcript")
        await expect(transcript.get_by_test_id("message-text").last).to_have_text("and the invoice?", timeout=LIVE)
        assert (await server.simulate_sms(OTHER, ALICE, "hello from someone else"))[0] == 200
        await notes(page, 2)
        assert (await page.evaluate("window.__notes"))[1] == {"title": "(212) 555-0198", "body": "hello from someone else"}
        await expect(page).to_have_title("(1) didchat", timeout=LIVE)
        await expect(page.get_by_test_id("alert-sound")).to_have_attribute("data-played", "2")

        # A reload: the same conversation open again, the alerts still on (this browser remembers them).
        assert "#c=" in page.url
        await page.reload()
        await expect(transcript.get_by_test_id("message-text").last).to_have_text("and the invoice?", timeout=LIVE)
        await expect(page.get_by_test_id("conversation-title")).to_contain_text(CUSTOMER)
        await expect(page.get_by_test_id("alerts")).to_have_attribute("aria-pressed", "true")
        assert not errors, errors
    finally:
        await context.close()


async def test_logging_out_in_one_tab_logs_out_every_tab(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    first, second = await context.new_page(), await context.new_page()
    try:
        await log_in(first, server)
        await second.goto(server.url + "/")  # the same browser: its refresh cookie signs this tab in
        await expect(second.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected",
                                                                                   timeout=LIVE)
        await first.get_by_test_id("logout").click()
        await expect(first.get_by_test_id("login-username")).to_be_visible(timeout=LIVE)
        await expect(second.get_by_test_id("login-username")).to_be_visible(timeout=LIVE)
        await second.reload()  # and it stays logged out
        await expect(second.get_by_test_id("login-username")).to_be_visible(timeout=LIVE)
    finally:
        await context.close()
