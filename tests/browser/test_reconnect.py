"""The browser client tells the truth about its connection (issue 8, point 18, client side):
"Reconnecting…" within 2 s of losing the server, a send made meanwhile stays queued, and after
the server is back it is sent once, with the same client id."""
from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.browser.test_agent_ui import CHROMIUM_ARGS, LIVE, browser  # noqa: F401 - `browser` is a fixture
from tests.browser.ui import log_in

pytestmark = pytest.mark.browser


async def test_stopping_the_server_shows_reconnecting_and_queued_sends_go_after_the_restart(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    page = await (await browser.new_context()).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, server)
    presence = page.get_by_test_id("presence")
    if await presence.get_attribute("data-state") != "ready":
        await presence.click()
    await expect(presence).to_have_attribute("data-state", "ready", timeout=LIVE)
    await server.simulate_sms(server.customer, server.alice_number, "are you there?")
    item = page.locator(f'[data-testid="conversation-item"][data-contact="{server.customer}"]')
    await item.click()

    state = page.get_by_test_id("connection-state")
    lost = time.monotonic()
    stopping = asyncio.create_task(server.stop())
    await expect(state).to_have_attribute("data-state", "reconnecting", timeout=2000)
    assert time.monotonic() - lost < 2.5
    await expect(state).to_have_text("Reconnecting…")
    await stopping

    await page.get_by_test_id("reply-text").fill("sent after the restart")
    await page.get_by_test_id("reply-text").press("Enter")
    pending = page.locator('[data-testid="message"][data-direction="out"]').filter(has_text="sent after the restart")
    await expect(pending.get_by_test_id("message-status")).to_have_attribute("data-status", "sending")
    await asyncio.sleep(1)  # a while down: nothing may claim to be connected meanwhile
    assert await state.get_attribute("data-state") == "reconnecting"

    await server.start()
    await expect(state).to_have_attribute("data-state", "connected", timeout=LIVE)
    await expect(pending.get_by_test_id("message-status")).to_have_attribute(
        "data-status", re.compile("^(queued|sent|delivered)$"), timeout=LIVE)
    await server.twilio_api.wait_for_requests(1, timeout=10)
    assert [r["Body"] for r in server.twilio_api.requests] == ["sent after the restart"]
    await expect(pending).to_have_count(1)
    assert errors == []


async def test_a_send_the_server_does_not_answer_shows_reconnecting_then_goes_once(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    page = await (await browser.new_context()).new_page()
    await log_in(page, server)
    await server.simulate_sms(server.customer, server.alice_number, "hello?")
    item = page.locator(f'[data-testid="conversation-item"][data-contact="{server.customer}"]')
    await expect(item).to_be_visible(timeout=LIVE)
    await item.click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)

    # The store stops answering (the socket stays open): every write waits until released.
    commit, release = server.services.commit, asyncio.Event()
    real_run = commit.run

    async def stuck(unit):
        await release.wait()
        return await real_run(unit)

    commit.run = stuck
    state = page.get_by_test_id("connection-state")
    # "Reconnecting…" shows while the manager waits to reconnect (a quarter to three quarters of a second
    # here, the socket being fine): record every state the indicator takes rather than poll for it.
    await page.evaluate("""() => {
        const node = document.querySelector('[data-testid="connection-state"]');
        window.connectionStates = [];
        new MutationObserver(() => window.connectionStates.push(node.dataset.state))
            .observe(node, {attributes: true, attributeFilter: ["data-state"]});
    }""")
    await page.get_by_test_id("reply-text").fill("held up")
    await page.get_by_test_id("reply-text").press("Enter")
    await page.wait_for_function(  # the client gives a call 2.5 s
        "() => window.connectionStates.includes('reconnecting')", timeout=8000)
    commit.run = real_run
    release.set()
    await expect(state).to_have_attribute("data-state", "connected", timeout=LIVE)
    sent = page.locator('[data-testid="message"][data-direction="out"]').filter(has_text="held up")
    await expect(sent.get_by_test_id("message-status")).to_have_attribute(
        "data-status", re.compile("^(queued|sent|delivered)$"), timeout=LIVE)
    await server.twilio_api.wait_for_requests(1, timeout=10)
    await asyncio.sleep(0.5)  # a second copy would have reached the provider by now
    assert [r["Body"] for r in server.twilio_api.requests] == ["held up"]
    await expect(sent).to_have_count(1)


async def test_a_send_answered_retry_is_sent_again_with_the_same_client_id(browser, make_server, database_url):  # noqa: F811
    from playwright.async_api import expect

    from tests.chat.test_agent_calls import fail_outbox_inserts

    server = await make_server()
    page = await (await browser.new_context()).new_page()
    await log_in(page, server)
    await server.simulate_sms(server.customer, server.alice_number, "hello?")
    item = page.locator(f'[data-testid="conversation-item"][data-contact="{server.customer}"]')
    await expect(item).to_be_visible(timeout=LIVE)
    await item.click()
    await fail_outbox_inserts(database_url, True)  # a real store error: the server answers "retry"
    await page.get_by_test_id("reply-text").fill("despite the hiccup")
    await page.get_by_test_id("reply-text").press("Enter")
    sent = page.locator('[data-testid="message"][data-direction="out"]').filter(has_text="despite the hiccup")
    await expect(sent.get_by_test_id("message-status")).to_have_attribute("data-status", "sending")
    await asyncio.sleep(1.5)  # at least one retry is refused too
    await expect(sent.get_by_test_id("message-status")).to_have_attribute("data-status", "sending")
    await fail_outbox_inserts(database_url, False)
    await expect(sent.get_by_test_id("message-status")).to_have_attribute(
        "data-status", re.compile("^(queued|sent|delivered)$"), timeout=LIVE)
    await server.twilio_api.wait_for_requests(1, timeout=10)
    await asyncio.sleep(0.5)
    assert [r["Body"] for r in server.twilio_api.requests] == ["despite the hiccup"]
    await expect(sent).to_have_count(1)
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
