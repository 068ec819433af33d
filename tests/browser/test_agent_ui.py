"""The agent's browser client, end to end, in a real Chromium (Debian's `chromium`).

Log in through the form, receive an SMS live, reply, watch the delivery state move from
queued/sent to delivered, and check that message text is never rendered as HTML.

Needs the `didchat_server` fixture (tests/conftest.py): a running didchat with the agent
"alice", a fake Twilio REST API, and `simulate_sms` posting signed Twilio webhooks.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CUSTOMER = "+12125550199"  # a valid number: didchat checks E.164 numbers with phonenumbers
OTHER_CUSTOMER = "+12125550198"
XSS = "<img src=x onerror=alert(1)>"
SCREENSHOT = "/tmp/didchat-ui.png"
LIVE = 10_000  # ms: how long a pushed event may take to show up


def _chromium_path() -> str | None:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    return path if os.path.exists(path) else None


def _unavailable(reason: str) -> None:
    if os.environ.get("DIDCHAT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (DIDCHAT_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
async def browser():
    path = _chromium_path()
    if path is None:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _wait_for_sent(twilio_api, body: str, timeout: float = 5.0) -> dict:
    """The fake Twilio API's request whose Body is `body` (other sends, e.g. a scenario's
    greeting, may come before or after it)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        for request in twilio_api.requests:
            if request.get("Body") == body:
                return request
        seen = len(twilio_api.requests)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            bodies = [r.get("Body") for r in twilio_api.requests]
            pytest.fail(f"the fake Twilio API never received {body!r}; it got {bodies!r}")
        try:
            await twilio_api.wait_for_requests(seen + 1, timeout=remaining)
        except TimeoutError:
            pass


async def _sid_of(twilio_api, request: dict, timeout: float = 5.0) -> str:
    """The Message sid the fake API gave `request` (recorded with it, or looked up among the
    messages it created: it records a request before it creates the message)."""
    if request.get("sid"):
        return request["sid"]
    deadline = time.monotonic() + timeout
    while True:
        for sid, message in list(getattr(twilio_api, "messages", {}).items()):
            if message.get("body") == request.get("Body") and message.get("to") == request.get("To"):
                return sid
        if time.monotonic() > deadline:
            pytest.fail(f"the fake Twilio API created no message for {request!r}")
        await asyncio.sleep(0.05)


async def test_agent_receives_replies_and_sees_delivery(browser, didchat_server):
    from playwright.async_api import expect

    server = didchat_server
    username, password = server.agent
    alice_number = server.alice_number
    customer = getattr(server, "customer", CUSTOMER)

    async def sms(text: str) -> None:
        answer = await server.simulate_sms(sender=customer, to=alice_number, text=text)
        if isinstance(answer, tuple):  # (HTTP status, body)
            assert answer[0] < 300, f"the webhook was refused: {answer!r}"

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    dialogs: list[str] = []
    page_errors: list[str] = []

    def on_dialog(dialog):
        dialogs.append(f"{dialog.type}: {dialog.message}")
        asyncio.ensure_future(dialog.dismiss())

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    try:
        # --- log in through the form -------------------------------------------------------
        await page.goto(server.url + "/")
        await page.get_by_test_id("login-username").fill(username)
        await page.get_by_test_id("login-password").fill(password)
        await page.get_by_test_id("login-submit").click()

        presence = page.get_by_test_id("presence")
        await expect(presence).to_be_visible(timeout=LIVE)
        await expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=LIVE
        )
        await expect(page.get_by_test_id("login-username")).to_be_hidden()

        # Ready, so the conversation is routed to alice right away.
        if await presence.get_attribute("data-state") != "ready":
            await presence.click()
        await expect(presence).to_have_attribute("data-state", "ready", timeout=LIVE)

        # --- an SMS arrives and shows up live ------------------------------------------------
        first = "Hi, is my order ready?"
        await sms(first)

        item = page.locator(f'[data-testid="conversation-item"][data-contact="{customer}"]')
        await expect(item).to_be_visible(timeout=LIVE)
        await expect(item).to_have_count(1)
        await expect(item.get_by_test_id("unread-badge")).to_have_text("1", timeout=LIVE)

        await item.click()
        transcript = page.get_by_test_id("transcript")
        inbound = transcript.locator('[data-testid="message"][data-direction="in"]')
        await expect(inbound.last.get_by_test_id("message-text")).to_have_text(first, timeout=LIVE)
        await expect(item.get_by_test_id("unread-badge")).to_have_count(0, timeout=LIVE)

        # --- the composer counts characters and segments -------------------------------------
        reply_box = page.get_by_test_id("reply-text")
        counter = page.get_by_test_id("composer-counter")
        await reply_box.fill("a" * 190)
        await expect(counter).to_have_text("190 characters (2 messages, GSM-7)")
        await reply_box.fill("€" * 80)  # extension characters count twice
        await expect(counter).to_have_text("160 characters (1 message, GSM-7)")
        await reply_box.fill("Привет")
        await expect(counter).to_have_text(re.compile(r"^6 characters \(1 message, UCS-2\)$"))

        # --- reply; Enter sends ----------------------------------------------------------------
        await expect(page.get_by_test_id("from-picker")).to_have_value(alice_number, timeout=LIVE)
        reply = "Yes, it ships today. Thanks for waiting!"
        await reply_box.fill(reply)
        await reply_box.press("Enter")
        await expect(reply_box).to_have_value("")

        sent = await _wait_for_sent(server.twilio_api, reply, timeout=5)
        assert sent["From"] == alice_number
        assert sent["To"] == customer

        outbound = transcript.locator('[data-testid="message"][data-direction="out"]').filter(
            has_text=reply
        )
        await expect(outbound).to_have_count(1, timeout=LIVE)
        status = outbound.get_by_test_id("message-status")
        await expect(status).to_have_attribute("data-status", re.compile(r"^(queued|sent)$"), timeout=LIVE)

        # --- the delivery receipt updates the bubble live --------------------------------------
        await server.twilio_api.send_status(await _sid_of(server.twilio_api, sent), "delivered")
        await expect(status).to_have_attribute("data-status", "delivered", timeout=LIVE)
        await expect(outbound).to_have_count(1)

        # --- message text is text, never HTML ----------------------------------------------------
        await sms(XSS)
        xss_text = inbound.last.get_by_test_id("message-text")
        await expect(xss_text).to_have_text(XSS, timeout=LIVE)
        assert await xss_text.text_content() == XSS
        await expect(item.get_by_test_id("conversation-preview")).to_have_text(XSS, timeout=LIVE)
        assert await transcript.locator("img").count() == 0
        assert await page.locator("img").count() == 0
        assert dialogs == []

        # Still one bubble per message after everything above.
        await expect(inbound).to_have_count(2)
        await expect(outbound).to_have_count(1)

        # --- three SMS wait while alice is not ready, then come as one burst (`messages`) -------
        await presence.click()
        await expect(presence).to_have_attribute("data-state", "not_ready", timeout=LIVE)
        for text in ("one", "two", "three"):
            answer = await server.simulate_sms(sender=OTHER_CUSTOMER, to=alice_number, text=f"burst {text}")
            if isinstance(answer, tuple):
                assert answer[0] < 300, f"the webhook was refused: {answer!r}"
        other = page.locator(f'[data-testid="conversation-item"][data-contact="{OTHER_CUSTOMER}"]')
        await expect(other).to_have_count(0)  # waiting for alice, not pushed
        await presence.click()
        await expect(presence).to_have_attribute("data-state", "ready", timeout=LIVE)
        await expect(other.get_by_test_id("unread-badge")).to_have_text("3", timeout=LIVE)
        await other.click()
        await expect(inbound.get_by_test_id("message-text")).to_have_text(
            ["burst one", "burst two", "burst three"], timeout=LIVE)
        await item.click()

        # --- a reload restores the session from the refresh cookie and re-syncs ----------------
        await page.reload()
        await expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=LIVE
        )
        await expect(page.get_by_test_id("login-username")).to_be_hidden()
        await expect(item).to_have_count(1, timeout=LIVE)
        await item.click()
        await expect(inbound).to_have_count(2, timeout=LIVE)
        await expect(inbound.last.get_by_test_id("message-text")).to_have_text(XSS)
        await expect(outbound.get_by_test_id("message-status")).to_have_attribute(
            "data-status", "delivered", timeout=LIVE
        )
        assert await page.locator("img").count() == 0
        assert dialogs == []
        assert page_errors == []
    finally:
        try:
            await page.screenshot(path=SCREENSHOT, full_page=False)
        finally:
            await context.close()


async def _log_in(page, server) -> None:
    from playwright.async_api import expect

    await page.goto(server.url + "/")
    await page.get_by_test_id("login-username").fill(server.agent[0])
    await page.get_by_test_id("login-password").fill(server.agent[1])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)


async def test_logging_out_in_one_tab_shows_the_login_page_in_the_others(browser, didchat_server):
    from playwright.async_api import expect

    context = await browser.new_context()
    first = await context.new_page()
    await _log_in(first, didchat_server)
    second = await context.new_page()  # same browser: the refresh cookie restores the session
    await second.goto(didchat_server.url + "/")
    await expect(second.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    await first.get_by_test_id("logout").click()
    for page in (first, second):
        await expect(page.get_by_test_id("login-username")).to_be_visible(timeout=LIVE)
    await second.reload()  # and the session is gone for good
    await expect(second.get_by_test_id("login-username")).to_be_visible(timeout=LIVE)
    await context.close()


async def test_an_expired_token_is_refreshed_transparently(browser, make_server):
    from playwright.async_api import expect

    server = await make_server(extra="token_minutes: 0.02\n")  # 1.2 s
    page = await (await browser.new_context()).new_page()
    await _log_in(page, server)
    await server.simulate_sms(server.customer, server.alice_number, "still there?")
    item = page.locator(f'[data-testid="conversation-item"][data-contact="{server.customer}"]')
    await expect(item).to_be_visible(timeout=LIVE)
    await item.click()
    await asyncio.sleep(1.5)  # the token has expired on the open socket
    await page.get_by_test_id("reply-text").fill("after the expiry")
    await page.get_by_test_id("reply-text").press("Enter")
    sent = await _wait_for_sent(server.twilio_api, "after the expiry", timeout=10)
    assert sent["To"] == server.customer
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
