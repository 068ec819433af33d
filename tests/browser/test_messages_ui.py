"""What messages say they are, in the agent client (real Chromium): a message didchat sent itself is marked
automatic in the transcript and in the list, never shown as the agent's own "You: ..." (issue 11, point 3)."""
from __future__ import annotations

import pytest

from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.browser.ui import log_in
from tests.conftest import ALICE, CUSTOMER

pytestmark = pytest.mark.browser


async def test_the_opt_out_confirmation_is_marked_automatic_and_her_reply_is_hers(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    try:
        await log_in(page, server, ready=True)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "Hi there"))[0] == 200
        item = page.locator(f'[data-testid="conversation-item"][data-contact="{CUSTOMER}"]')
        await item.click()
        await page.get_by_test_id("reply-text").fill("Hello, how can I help?")
        await page.get_by_test_id("reply-send").click()
        transcript = page.get_by_test_id("transcript")
        mine = transcript.locator('[data-testid="message"][data-direction="out"]').filter(has_text="how can I help")
        await expect(mine).to_have_count(1, timeout=LIVE)
        await expect(mine.get_by_test_id("automatic-label")).to_have_count(0)
        await expect(item.get_by_test_id("conversation-preview")).to_have_text("You: Hello, how can I help?", timeout=LIVE)

        assert (await server.simulate_sms(CUSTOMER, ALICE, "STOP"))[0] == 200
        automatic = transcript.locator('[data-testid="message"][data-automatic="true"]')
        await expect(automatic).to_have_count(1, timeout=LIVE)
        await expect(automatic.get_by_test_id("automatic-label")).to_have_text("Automatic: opt-out confirmation")
        text = await automatic.get_by_test_id("message-text").text_content()
        await expect(item.get_by_test_id("conversation-preview")).to_have_text(f"Automatic: {text}", timeout=LIVE)
    finally:
        await context.close()
