"""Search and filters in the agent client (real Chromium, both databases; issue 11, point 5): the box above the
list finds a conversation by the contact's name, by their number typed with spaces, and by a word of a message
(its excerpt with the word marked); clearing it brings the live list back; the Closed filter shows a closed
conversation that sync never listed, and opening it shows its transcript; "Load more" pages past the first 50."""
from __future__ import annotations

import pytest

from chat.domain.conversations import contact_id, insert_message, open_conversation
from chat.store import utcnow
from chat.store.tables import contacts, conversations
from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.browser.ui import log_in
from tests.conftest import ALICE

pytestmark = pytest.mark.browser
MARIA = "+14155550100"
JONES = "+12125550177"


async def conversation(server, number: str, texts: tuple[str, ...], *, name: str | None = None,
                       assigned: str | None = "alice", closed: bool = False) -> int:
    """A conversation on Alice's number with the contact at `number`, made through the domain layer."""
    owner = server.services.directory.by_name["alice"].id
    holder = server.services.directory.by_name[assigned].id if assigned else None

    async def unit(conn):
        contact = await contact_id(conn, number)
        if name is not None:
            await conn.execute(contacts.update().where(contacts.c.id == contact).values(name=name))
        conv = await open_conversation(conn, contact, ALICE, owner, holder)
        for text in texts:
            await insert_message(conn, conv.id, direction="in", text=text, status="received", sender=number,
                                 recipient=ALICE, connector="tw")
        if closed:
            await conn.execute(conversations.update().where(conversations.c.id == conv.id)
                               .values(state="closed", closed_at=utcnow()))
        return conv.id
    return await server.services.commit.run(unit)


async def opened(browser, server, width: int = 1280, height: int = 800):  # noqa: F811
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, server)
    return context, page, errors


async def test_finds_by_name_by_number_with_spaces_and_by_a_word_then_clears(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    maria = await conversation(server, MARIA, ("Where is my delivery? It was due Tuesday",), name="Maria O'Brien")
    await conversation(server, JONES, ("hello there",), name="Bob Jones")
    context, page, errors = await opened(browser, server)
    try:
        live = page.get_by_test_id("conversation-list")
        await expect(live.get_by_test_id("conversation-item")).to_have_count(2, timeout=LIVE)
        box = page.get_by_test_id("search-q")
        results = page.get_by_test_id("search-results").get_by_test_id("search-result")

        await box.fill("brien")
        await expect(results).to_have_count(1, timeout=LIVE)
        await expect(results.first).to_have_attribute("data-id", str(maria))
        await expect(results.first.locator("mark")).to_have_text("Brien")
        await expect(live).to_be_hidden()

        await box.fill("+1 415 555")
        await expect(results).to_have_count(1, timeout=LIVE)
        await expect(results.first).to_have_attribute("data-contact", MARIA)

        await box.fill("deliv")
        await expect(results).to_have_count(1, timeout=LIVE)
        excerpt = results.first.get_by_test_id("search-excerpt")
        await expect(excerpt).to_contain_text("Where is my delivery?")
        await expect(excerpt.locator("mark")).to_have_text("deliv")

        await box.fill("nothing like it")
        await expect(page.get_by_test_id("search-status")).to_have_text("No conversations match.", timeout=LIVE)
        await expect(results).to_have_count(0)

        await box.fill("tuesday")
        await expect(results).to_have_count(1, timeout=LIVE)
        await results.first.click()
        transcript = page.get_by_test_id("transcript")
        found = transcript.locator('[data-testid="message"].found')
        await expect(found.get_by_test_id("message-text")).to_have_text("Where is my delivery? It was due Tuesday",
                                                                         timeout=LIVE)

        await box.press("Escape")
        await expect(live).to_be_visible()
        await expect(live.get_by_test_id("conversation-item")).to_have_count(2)
        await expect(page.get_by_test_id("search-view")).to_be_hidden()
        assert errors == []
    finally:
        await context.close()


async def test_closed_filter_shows_a_conversation_sync_did_not_list_and_opens_it(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    await conversation(server, JONES, ("an open one",), name="Bob Jones")
    # Bob had it, on Alice's number, and closed it: Alice's sync never lists it; her search does.
    closed = await conversation(server, MARIA, ("The parcel came, thanks",), name="Maria O'Brien", assigned="bob",
                                closed=True)
    context, page, errors = await opened(browser, server)
    try:
        live = page.get_by_test_id("conversation-list").get_by_test_id("conversation-item")
        await expect(live).to_have_count(1, timeout=LIVE)
        await page.get_by_test_id("filter-closed").click()
        await expect(page.get_by_test_id("filter-closed")).to_have_attribute("aria-pressed", "true")
        results = page.get_by_test_id("search-results").get_by_test_id("search-result")
        await expect(results).to_have_count(1, timeout=LIVE)
        await expect(results.first).to_have_attribute("data-id", str(closed))
        await expect(results.first).to_contain_text("closed")

        await results.first.click()
        await expect(page.get_by_test_id("conversation-title")).to_contain_text("Maria O'Brien", timeout=LIVE)
        transcript = page.get_by_test_id("transcript")
        await expect(transcript.get_by_test_id("message-text")).to_have_text(["The parcel came, thanks"], timeout=LIVE)
        await expect(page.get_by_test_id("reopen-conversation")).to_be_visible()

        await page.get_by_test_id("filter-open").click()
        await expect(results).to_have_count(1, timeout=LIVE)
        await expect(results.first).to_contain_text("Bob Jones")
        await page.get_by_test_id("filter-all").click()
        await expect(live).to_have_count(1)  # the live list, without the one opened from the search
        assert errors == []
    finally:
        await context.close()


async def test_load_more_pages_past_the_first_fifty(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    for n in range(56):
        await conversation(server, f"+1303555{n:04d}", (f"invoice number {n}",))
    context, page, errors = await opened(browser, server, 390, 844)  # a phone: the list is the whole view
    try:
        await page.get_by_test_id("search-q").fill("invoice")
        results = page.get_by_test_id("search-results").get_by_test_id("search-result")
        await expect(results).to_have_count(50, timeout=LIVE)
        await expect(page.get_by_test_id("search-status")).to_have_text("50 conversations")
        more = page.get_by_test_id("search-more")
        await more.click()
        await expect(results).to_have_count(56, timeout=LIVE)
        await expect(more).to_be_hidden()
        ids = [await r.get_attribute("data-id") for r in await results.all()]
        assert len(set(ids)) == 56  # none twice
        widths = await page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"

        await results.nth(53).click()  # a result past the first page opens as the whole view...
        await expect(page.get_by_test_id("back-to-list")).to_be_visible()
        await page.get_by_test_id("back-to-list").click()  # ...and back is at that result, the search kept
        await expect(results.nth(53)).to_be_focused()
        await expect(results).to_have_count(56)
        assert errors == []
    finally:
        await context.close()
