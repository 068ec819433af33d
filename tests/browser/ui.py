"""What the browser tests do again and again in the agent client."""
from __future__ import annotations

from tests.browser.test_agent_ui import LIVE


async def log_in(page, server, ready: bool = False) -> None:
    """Open the client, sign in as the server's agent through the form, wait for the socket; `ready`: and be
    Ready, so that new conversations are routed to her at once."""
    from playwright.async_api import expect

    await page.goto(server.url + "/")
    await page.get_by_test_id("login-username").fill(server.agent[0])
    await page.get_by_test_id("login-password").fill(server.agent[1])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    if ready:
        presence = page.get_by_test_id("presence")
        if await presence.get_attribute("data-state") != "ready":
            await presence.click()
        await expect(presence).to_have_attribute("data-state", "ready", timeout=LIVE)
