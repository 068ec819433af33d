"""Messages that say what they are, in the agent client (real Chromium, both databases; issue 11, point 3): a
note only agents see is marked as one; a customer who texted STOP shows as a banner above a disabled composer,
in plain words, until they text START; a reply the provider refused shows the provider's own words; messages
from earlier days are under day separators ("Yesterday", a date, "Today") with times that say the day."""
from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from chat.domain.conversations import contact_id, insert_message, open_conversation
from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.browser.ui import log_in
from tests.conftest import ALICE, CUSTOMER

pytestmark = pytest.mark.browser
ZONE = "Europe/London"
REGION_REFUSED = "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"


async def opened(browser, server):  # noqa: F811
    """The client in London's time zone, in British English (days and times as the tests expect them)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id=ZONE, locale="en-GB")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, server, ready=True)
    return context, page, errors


async def conversation_with(server, messages: list[tuple[str, str, datetime | None]]) -> int:
    """Alice's conversation with the customer holding these (direction, text, created_at or now) messages."""
    alice = server.services.directory.by_name["alice"].id

    async def unit(conn):
        conv = await open_conversation(conn, await contact_id(conn, CUSTOMER), ALICE, alice, alice)
        for direction, text, at in messages:
            extra = {"created_at": at, "updated_at": at} if at else {}
            await insert_message(conn, conv.id, direction=direction, text=text,
                                 status="received" if direction == "in" else direction, sender=CUSTOMER,
                                 recipient=ALICE, connector="tw", **extra)
        return conv.id
    return await server.services.commit.run(unit)


def london_noon(days_ago: int) -> datetime:
    """Noon in London, `days_ago` days before today there, in UTC."""
    today = datetime.now(ZoneInfo(ZONE)).date()
    return datetime.combine(today - timedelta(days=days_ago), time(12), ZoneInfo(ZONE)).astimezone(UTC)


async def test_day_separators_and_times_say_the_day(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    three_days_ago, yesterday = london_noon(3), london_noon(1)
    await conversation_with(server, [("in", "Is it in stock?", three_days_ago), ("in", "Any news?", yesterday),
                                     ("in", "Hello again", None)])
    context, page, errors = await opened(browser, server)
    try:
        await page.get_by_test_id("conversation-item").click()
        transcript = page.get_by_test_id("transcript")
        days = transcript.get_by_test_id("day-separator")
        earlier = three_days_ago.astimezone(ZoneInfo(ZONE))
        await expect(days).to_have_text([f"{earlier:%A} {earlier.day} {earlier:%B}", "Yesterday", "Today"], timeout=LIVE)
        times = transcript.locator('[data-testid="message"] time')
        await expect(times.nth(0)).to_have_text(f"{earlier.day} {earlier:%b} 12:00")
        await expect(times.nth(1)).to_have_text("Yesterday 12:00")
        await expect(times.nth(2)).to_have_text(re.compile(r"^Today \d\d:\d\d$"))
        assert errors == []
    finally:
        await context.close()


async def test_a_note_is_marked_as_only_agents_see_it(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    await conversation_with(server, [("in", "Where is my refund?", None), ("note", "Refund approved by Bob", None)])
    context, page, errors = await opened(browser, server)
    try:
        await page.get_by_test_id("conversation-item").click()
        note = page.get_by_test_id("transcript").locator('[data-testid="message"][data-direction="note"]')
        await expect(note.get_by_test_id("note-label")).to_have_text("Note — only agents see this", timeout=LIVE)
        await expect(note.get_by_test_id("message-text")).to_have_text("Refund approved by Bob")
        assert errors == []
    finally:
        await context.close()


async def test_an_opted_out_customer_is_a_banner_over_a_disabled_composer(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context, page, errors = await opened(browser, server)
    try:
        assert (await server.simulate_sms(CUSTOMER, ALICE, "Hi"))[0] == 200
        await page.get_by_test_id("conversation-item").click()
        banner = page.get_by_test_id("optout-banner")
        await expect(banner).to_be_hidden()
        assert (await server.simulate_sms(CUSTOMER, ALICE, "STOP"))[0] == 200
        words = f"texted STOP: no SMS can go to them from {ALICE} until they text START."
        # The customer as the client shows them: E.164, or as their country writes it once the contact panel read it.
        shown = f"({re.escape(CUSTOMER)}|{re.escape('(212) 555-0199')})"
        await expect(banner).to_have_text(re.compile(f"^{shown} {re.escape(words)}$"), timeout=LIVE)
        await expect(page.get_by_test_id("reply-text")).to_be_disabled()
        await expect(page.get_by_test_id("reply-send")).to_be_disabled()
        await expect(page.get_by_test_id("attach-open")).to_be_hidden()

        assert (await server.simulate_sms(CUSTOMER, ALICE, "START"))[0] == 200
        await expect(banner).to_be_hidden(timeout=LIVE)
        await expect(page.get_by_test_id("reply-text")).to_be_enabled()
        assert errors == []
    finally:
        await context.close()


async def test_a_refused_reply_shows_the_providers_words(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context, page, errors = await opened(browser, server)
    try:
        assert (await server.simulate_sms(CUSTOMER, ALICE, "Hi"))[0] == 200
        await page.get_by_test_id("conversation-item").click()
        server.twilio_api.fail_next(status=400, code=21408, message=REGION_REFUSED)  # permanent: no retry
        await page.get_by_test_id("reply-text").fill("Hello from abroad")
        await page.get_by_test_id("reply-send").click()
        mine = page.get_by_test_id("transcript").locator('[data-testid="message"][data-direction="out"]')
        await expect(mine.get_by_test_id("message-status")).to_have_attribute("data-status", "failed", timeout=LIVE)
        await expect(mine.get_by_test_id("message-status")).to_have_text("Failed")
        await expect(mine.get_by_test_id("message-error")).to_contain_text("The provider said: ")
        await expect(mine.get_by_test_id("message-error")).to_contain_text(REGION_REFUSED)
        assert errors == []
    finally:
        await context.close()
