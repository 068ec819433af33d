"""The agent client at a phone's, a tablet's and a desktop's size (real Chromium): no horizontal scroll on
any view, the composer on screen; on a phone the list and the conversation are two views with a back
button between them (issue 11, point 1)."""
from __future__ import annotations

import pytest

from tests.browser.test_agent_ui import LIVE, _wait_for_sent, browser  # noqa: F401 - the fixture
from tests.browser.ui import log_in
from tests.conftest import ALICE, CUSTOMER

pytestmark = pytest.mark.browser
SIZES = {"phone": (390, 844), "tablet": (768, 1024), "desktop": (1280, 800)}


async def no_horizontal_scroll(page, where: str) -> None:
    widths = await page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]")
    assert max(widths[:2]) <= widths[2], f"{where}: the page scrolls sideways ({widths[:2]} wider than {widths[2]})"


async def on_screen(page, test_id: str) -> None:
    """The element is visible and wholly inside the viewport (nothing to scroll to reach it)."""
    from playwright.async_api import expect

    element = page.get_by_test_id(test_id)
    await expect(element).to_be_visible(timeout=LIVE)
    box = await element.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    assert box["x"] >= 0 and box["y"] >= 0, f"{test_id} starts off screen: {box}"
    assert box["x"] + box["width"] <= size["width"] + 0.5, f"{test_id} runs off the right edge: {box}"
    assert box["y"] + box["height"] <= size["height"] + 0.5, f"{test_id} is below the fold: {box}"


async def inside(page, container: str, test_ids: list[str]) -> None:
    """Each element lies wholly within `container` (not cut off by it)."""
    outer = await page.locator(container).bounding_box()
    assert outer is not None
    for test_id in test_ids:
        box = await page.get_by_test_id(test_id).bounding_box()
        assert box is not None, test_id
        assert outer["x"] <= box["x"] and box["x"] + box["width"] <= outer["x"] + outer["width"] + 0.5, \
            f"{test_id} is cut off by {container}: {box} in {outer}"


@pytest.mark.parametrize("size", SIZES)
async def test_every_view_fits_and_the_composer_is_on_screen(browser, make_server, size):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    width, height = SIZES[size]
    context = await browser.new_context(viewport={"width": width, "height": height}, is_mobile=size == "phone",
                                        has_touch=size != "desktop")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(server.url + "/")
        await on_screen(page, "login-submit")
        await no_horizontal_scroll(page, "the login page")
        await log_in(page, server, ready=True)
        await on_screen(page, "logout")
        await no_horizontal_scroll(page, "the inbox")
        await inside(page, ".sidebar", ["alerts", "alert-sound", "new-conversation"])

        text = "Hello, a question about my order " + "with a rather long sentence " * 6
        assert (await server.simulate_sms(CUSTOMER, ALICE, text))[0] == 200
        item = page.get_by_test_id("conversation-item")
        await expect(item).to_have_count(1, timeout=LIVE)
        await on_screen(page, "conversation-item")
        transcript = page.get_by_test_id("transcript")
        if size == "phone":
            await expect(transcript).to_be_hidden()  # the list alone
        await item.click()

        await expect(transcript.get_by_test_id("message-text").last).to_have_text(text, timeout=LIVE)
        await on_screen(page, "reply-text")
        await on_screen(page, "reply-send")
        await no_horizontal_scroll(page, "the conversation")
        await page.screenshot(path=f"/tmp/didchat-layout-{size}.png")  # to look at when this fails
        if size == "phone":
            await expect(item).to_be_hidden()  # the conversation alone, with the way back
            await on_screen(page, "back-to-list")
        else:
            await expect(item).to_be_visible()  # side by side
            await expect(page.get_by_test_id("back-to-list")).to_be_hidden()

        reply = f"Shipped today ({size})."
        await page.get_by_test_id("reply-text").fill(reply)
        await page.get_by_test_id("reply-send").click()
        sent = await _wait_for_sent(server.twilio_api, reply)
        assert (sent["From"], sent["To"]) == (ALICE, CUSTOMER)
        await expect(transcript.locator('[data-direction="out"]').filter(has_text=reply)).to_have_count(1, timeout=LIVE)

        if size == "phone":
            await page.get_by_test_id("back-to-list").click()
            await expect(item).to_be_visible()
            await expect(transcript).to_be_hidden()
            await no_horizontal_scroll(page, "the list, back from the conversation")
            await item.click()  # and in again
            await on_screen(page, "reply-send")
        assert not errors, errors
    finally:
        await context.close()
