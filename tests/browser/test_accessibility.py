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
