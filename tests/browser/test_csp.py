"""The browser client under its Content-Security-Policy, with a customer who writes right-to-left
overrides: log in, receive an SMS, reply. No CSP violation and no console error; a name with
U+202E does not reverse the number and time shown after it."""
from __future__ import annotations

import pytest

from chat.store.db import utcnow
from chat.store.tables import contacts
from tests.browser.ui import log_in
from tests.conftest import ALICE, CUSTOMER, chromium_path, until

pytestmark = pytest.mark.browser
RLO = "\u202e"
NAME = f"Carol {RLO}tsrif"
TEXT = f"price {RLO}001 dollars"
LIVE = 10_000
CHARACTER_XS = """([selector, wanted]) => {
  const root = document.querySelector(selector);  // looked up now: the client re-renders its list on each update
  if (!root) return null;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(wanted);
    if (at < 0) continue;
    return [...wanted].map((_, k) => {
      const range = document.createRange();
      range.setStart(node, at + k);
      range.setEnd(node, at + k + 1);
      return range.getBoundingClientRect().left;
    });
  }
  return null;
}"""
WATCH_CSP = """document.addEventListener("securitypolicyviolation",
  (e) => (window.__violations = window.__violations || []).push(`${e.violatedDirective} ${e.blockedURI}`));"""


@pytest.fixture
async def page():
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        await page.add_init_script(WATCH_CSP)
        yield page
        await browser.close()


def restoring(line: str) -> bool:
    """The page's first try to restore a session from a refresh cookie it does not have yet (401, by design)."""
    return "status of 401" in line and "/api/" in line


async def in_order(page, selector: str, text: str) -> bool:
    """Whether the characters of `text` inside the element at `selector` are laid out left to right."""
    xs = await page.evaluate(CHARACTER_XS, [selector, text])
    assert xs, f"{text!r} is not shown in {selector}"
    return all(a < b for a, b in zip(xs, xs[1:]))


async def test_client_runs_under_the_csp_and_isolates_bidi_text(page, didchat_server):
    from playwright.async_api import expect

    server = didchat_server
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text} at {m.location.get('url')}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    async with server.services.db.write() as conn:
        await conn.execute(contacts.insert().values(number=CUSTOMER, name=NAME, created_at=utcnow()))

    await log_in(page, server, ready=True)

    status, _ = await server.simulate_sms(CUSTOMER, ALICE, TEXT)
    assert status == 200
    item = page.locator(f'[data-testid="conversation-item"][data-contact="{CUSTOMER}"]')
    await expect(item).to_be_visible(timeout=LIVE)
    await item.click()
    title = page.get_by_test_id("conversation-title")
    await expect(title).to_contain_text(CUSTOMER, timeout=LIVE)
    assert await in_order(page, '[data-testid="conversation-title"]', CUSTOMER), \
        "the RTL override in the name reversed the number after it"
    row = f'[data-testid="conversation-item"][data-contact="{CUSTOMER}"] .ci-top'
    time_shown = await item.locator(".ci-time").text_content()
    assert await in_order(page, row, time_shown), "the RTL override in the name reversed the time after it"
    await expect(page.get_by_test_id("message-text").last).to_have_text(TEXT, timeout=LIVE)

    await page.get_by_test_id("reply-text").fill("Thanks, Carol")
    await page.get_by_test_id("reply-text").press("Enter")
    await until(lambda: any(r.get("Body") == "Thanks, Carol" for r in server.twilio_api.requests), 10, "the reply")
    assert await page.evaluate("window.__violations || []") == []
    assert [line for line in console if not restoring(line)] == []
