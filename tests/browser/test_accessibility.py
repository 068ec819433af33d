"""axe-core (from the npm registry, node_modules/axe-core) on the agent client in a real Chromium: no serious
or critical violation on the login page, the inbox and a conversation, in light and in dark mode (the
system's setting; issue 11, point 9)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.browser.ui import log_in
from tests.conftest import ALICE, CUSTOMER

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = """axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
  .filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " " + (n.failureSummary || ""))})))"""


async def violations(page, where: str) -> list[str]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (README's test command does)")
    await page.evaluate(AXE.read_text())  # evaluated by the browser's debugger protocol: the page's CSP allows it
    found = await page.evaluate(SERIOUS)
    return [f"{where}: {json.dumps(v, ensure_ascii=False)}" for v in found]


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_no_serious_or_critical_violation_on_login_inbox_and_conversation(browser, make_server, scheme):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = await context.new_page()
    try:
        await page.goto(server.url + "/")
        await expect(page.get_by_test_id("login-submit")).to_be_visible(timeout=LIVE)
        found = await violations(page, "login")
        await log_in(page, server, ready=True)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "Is my order ready?"))[0] == 200
        item = page.get_by_test_id("conversation-item")
        await expect(item).to_have_count(1, timeout=LIVE)
        found += await violations(page, "inbox")
        await item.click()
        await page.get_by_test_id("reply-text").fill("It ships today.")
        await page.get_by_test_id("reply-send").click()
        transcript = page.get_by_test_id("transcript")
        await expect(transcript.locator('[data-direction="out"]')).to_have_count(1, timeout=LIVE)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "STOP"))[0] == 200  # an automatic message too
        await expect(transcript.locator('[data-automatic="true"]')).to_have_count(1, timeout=LIVE)
        found += await violations(page, "conversation")
        await page.screenshot(path=f"/tmp/didchat-{scheme}.png")  # to look at when this fails
        assert not found, "\n".join(found)
    finally:
        await context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_no_serious_or_critical_violation_with_search_results_media_and_attachments(browser, make_server, scheme):  # noqa: F811
    """What is not shown by default: search results with a marked excerpt, a filter chosen, a picture and a file
    in the transcript, a file on the composer and the opted-out banner."""
    from playwright.async_api import expect

    from tests.browser.test_media_ui import PDF, inbound_mms, png

    server = await make_server()
    server.twilio_api.served_media["photo.png"] = (png(40, 30), "image/png")
    server.twilio_api.served_media["terms.pdf"] = (PDF, "application/pdf")
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = await context.new_page()
    try:
        await log_in(page, server, ready=True)
        await inbound_mms(server, "Is my order ready?", [(server.twilio_api.media_url("photo.png"), "image/png"),
                                                         (server.twilio_api.media_url("terms.pdf"), "application/pdf")])
        await page.get_by_test_id("search-q").fill("order")
        await page.get_by_test_id("filter-open").click()
        results = page.get_by_test_id("search-result")
        await expect(results.locator("mark")).to_have_text("order", timeout=LIVE)
        found = await violations(page, "search")
        await results.click()
        transcript = page.get_by_test_id("transcript")
        await expect(transcript.get_by_test_id("media-image")).to_be_visible(timeout=LIVE)
        await expect(transcript.get_by_test_id("media-link")).to_be_visible()
        await page.get_by_test_id("attach-input").set_input_files(
            {"name": "shelf.png", "mimeType": "image/png", "buffer": png(4, 4)})
        await expect(page.get_by_test_id("attachment")).to_have_attribute("data-status", "ready", timeout=LIVE)
        found += await violations(page, "media and attachments")
        assert (await server.simulate_sms(CUSTOMER, ALICE, "STOP"))[0] == 200
        await expect(page.get_by_test_id("optout-banner")).to_be_visible(timeout=LIVE)
        found += await violations(page, "opted out")
        assert not found, "\n".join(found)
    finally:
        await context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_no_serious_or_critical_violation_with_queued_and_refused_sends_and_the_keys_list(browser, make_server, scheme):  # noqa: F811
    """What is not shown by default: a send refused (its reason, Retry, Discard), one queued while the server is
    away ("Queued", "Reconnecting…"), and the list of keyboard shortcuts."""
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = await context.new_page()
    try:
        await log_in(page, server, ready=True)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "Is my order ready?"))[0] == 200
        await page.get_by_test_id("conversation-item").click()
        await page.get_by_test_id("reply-text").fill("0123456789" * 170)  # longer than the server takes
        await page.get_by_test_id("reply-text").press("Enter")  # (the mouse over Send would test its hover)
        refused = page.locator('[data-testid="message-status"][data-status="refused"]')
        await expect(refused).to_be_visible(timeout=LIVE)
        await server.stop()
        await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "reconnecting")
        await page.get_by_test_id("reply-text").fill("It ships today.")
        await page.get_by_test_id("reply-text").press("Enter")
        await expect(page.locator('[data-testid="message-status"][data-pending="queued"]')).to_have_text("Queued")
        found = await violations(page, "queued and refused sends")
        await page.get_by_test_id("keys-open").click()
        await expect(page.get_by_test_id("keys-help")).to_be_visible()
        found += await violations(page, "keyboard shortcuts")
        assert not found, "\n".join(found)
    finally:
        await context.close()
