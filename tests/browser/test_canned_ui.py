"""Canned replies in the agent's browser client (real Chromium, both databases; issue 11, point 6): "/" in the
composer lists the replies that match as the agent types, the keyboard picks and inserts one with its variables
filled in (and the composer does not send it); a team's reply is offered only to the team's members; a reply of
her own made in "My replies" (refusals shown at the field) is offered at once, in her other tab too; the list and
the dialog pass axe in light and dark mode, and the list fits a phone."""
from __future__ import annotations

import pytest

from chat.store.db import utcnow
from chat.store.tables import contacts
from tests.browser.test_accessibility import violations
from tests.browser.test_agent_ui import LIVE, _wait_for_sent, browser  # noqa: F401 - the fixture
from tests.browser.test_layout import no_horizontal_scroll, on_screen
from tests.browser.ui import log_in
from tests.chat.test_admin_api import api_as
from tests.conftest import ALICE, BOB, CUSTOMER, PASSWORD

pytestmark = pytest.mark.browser
TEAMS = "teams: {support: [alice]}\n"
SHARED = [
    ("global", None, "hello", "Hello {contact.name}, this is {agent.display_name}."),
    ("global", None, "help", "How can I help you today?"),
    ("global", None, "bye", "Goodbye!"),
    ("team", "support", "refund", "Refunds take 5 days, {contact.name}."),
]


async def shared_replies(server) -> None:
    ada = await api_as(server, "ada")
    for scope, team, shortcut, text in SHARED:
        status, body, _ = await ada("POST", "/api/v1/canned-replies", {"scope": scope, "team": team, "shortcut": shortcut,
                                                                       "text": text})
        assert status == 201, body


async def agent_page(browser, server, name: str, size=(1280, 800), scheme: str = "light"):  # noqa: F811
    """A new browser for `name`, signed in and ready."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": size[0], "height": size[1]}, color_scheme=scheme,
                                        has_touch=size[0] < 800)
    page = await context.new_page()
    await page.goto(server.url + "/")
    await page.get_by_test_id("login-username").fill(name)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    if await page.get_by_test_id("presence").get_attribute("data-state") != "ready":
        await page.get_by_test_id("presence").click()
    await expect(page.get_by_test_id("presence")).to_have_attribute("data-state", "ready", timeout=LIVE)
    return context, page


async def open_conversation(page, server, customer: str, to: str, text: str) -> None:
    from playwright.async_api import expect

    assert (await server.simulate_sms(customer, to, text))[0] == 200
    item = page.locator(f'[data-testid="conversation-item"][data-contact="{customer}"]')
    await expect(item).to_have_count(1, timeout=LIVE)
    await item.click()
    await expect(page.get_by_test_id("transcript")).to_contain_text(text, timeout=LIVE)


def offered(page):
    return page.get_by_test_id("canned-popup").get_by_test_id("canned-option")


async def test_slash_filters_the_keyboard_inserts_with_the_name_filled_and_a_team_reply_is_the_teams(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server(extra=TEAMS)
    await shared_replies(server)
    async with server.services.db.write() as conn:
        await conn.execute(contacts.insert().values(number=CUSTOMER, name="Jane", created_at=utcnow()))
    context, page = await agent_page(browser, server, "alice")
    bob_context, bob = await agent_page(browser, server, "bob")
    try:
        await open_conversation(page, server, CUSTOMER, ALICE, "can I get a refund?")
        textarea, popup = page.get_by_test_id("reply-text"), page.get_by_test_id("canned-popup")
        await textarea.press_sequentially("/")
        await expect(offered(page)).to_have_count(4, timeout=LIVE)
        assert [await o.get_attribute("data-shortcut") for o in await offered(page).all()] == ["bye", "hello", "help", "refund"]
        await expect(offered(page).nth(3)).to_contain_text("team support")
        await expect(offered(page).nth(1)).to_contain_text("Hello Jane, this is Alice.")  # the text as it will go

        await textarea.press_sequentially("he")  # filtered as she types
        await expect(offered(page)).to_have_count(2)
        await expect(textarea).to_have_attribute("aria-activedescendant", "canned-option-0")
        await textarea.press("ArrowDown")
        await expect(offered(page).nth(1)).to_have_attribute("aria-selected", "true")
        await expect(textarea).to_have_attribute("aria-activedescendant", "canned-option-1")
        await textarea.press("ArrowUp")
        await expect(offered(page).nth(0)).to_have_attribute("aria-selected", "true")
        await textarea.press("Enter")  # inserts; the composer does not send
        await expect(textarea).to_have_value("Hello Jane, this is Alice.")
        await expect(popup).to_be_hidden()
        await expect(page.get_by_test_id("composer-counter")).to_have_attribute("data-units", "26")
        await expect(page.get_by_test_id("transcript").locator('[data-direction="out"]')).to_have_count(0)

        await textarea.press_sequentially(" /b")
        await expect(offered(page)).to_have_count(1)
        await textarea.press("Escape")
        await expect(popup).to_be_hidden()
        await textarea.press_sequentially("y")
        await expect(popup).to_be_hidden()  # closed for this "/" until one is typed anew
        await expect(textarea).to_have_value("Hello Jane, this is Alice. /by")

        await textarea.fill("")
        await textarea.press_sequentially("Sure. /ref")
        await expect(offered(page)).to_have_count(1)
        await textarea.press("Tab")
        await expect(textarea).to_have_value("Sure. Refunds take 5 days, Jane.")
        await expect(textarea).to_be_focused()
        await textarea.press("Enter")  # the list is closed: Enter sends again
        sent = await _wait_for_sent(server.twilio_api, "Sure. Refunds take 5 days, Jane.")
        assert (sent["From"], sent["To"]) == (ALICE, CUSTOMER)

        await open_conversation(bob, server, CUSTOMER, BOB, "and a question for Bob")  # Bob is in no team
        bob_text = bob.get_by_test_id("reply-text")
        await bob_text.press_sequentially("/")
        await expect(offered(bob)).to_have_count(3, timeout=LIVE)
        assert [await o.get_attribute("data-shortcut") for o in await offered(bob).all()] == ["bye", "hello", "help"]
        await bob_text.press_sequentially("ref")
        await expect(bob.get_by_test_id("canned-popup")).to_be_hidden()
    finally:
        await context.close()
        await bob_context.close()


async def test_a_reply_made_in_my_replies_is_offered_at_once_in_every_tab(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server(extra=TEAMS)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page, other = await context.new_page(), await context.new_page()
    try:
        await log_in(page, server, ready=True)
        await other.goto(server.url + "/")  # the same browser: its session is restored
        await expect(other.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
        await open_conversation(page, server, CUSTOMER, ALICE, "when does it ship?")
        await other.locator(f'[data-testid="conversation-item"][data-contact="{CUSTOMER}"]').click()

        await page.get_by_test_id("my-replies-open").click()
        dialog = page.get_by_test_id("my-replies")
        await expect(dialog).to_be_visible()
        shortcut, text = dialog.get_by_test_id("my-reply-shortcut"), dialog.get_by_test_id("my-reply-text")
        await expect(shortcut).to_be_focused()
        await shortcut.fill("no spaces please")
        await text.fill("Shipped")
        await dialog.get_by_test_id("my-reply-save").click()
        await expect(dialog.get_by_test_id("my-reply-shortcut-error")).to_contain_text("a shortcut is 1-32 letters", timeout=LIVE)
        await expect(shortcut).to_have_attribute("aria-invalid", "true")
        await shortcut.fill("ship")
        await text.fill("Shipped today, {contact.nam}!")
        await dialog.get_by_test_id("my-reply-save").click()
        await expect(dialog.get_by_test_id("my-reply-text-error")).to_contain_text("unknown variable {contact.nam}", timeout=LIVE)
        await expect(dialog.get_by_test_id("my-reply-shortcut-error")).to_be_hidden()
        await text.fill("Shipped today, {contact.name}!")
        await dialog.get_by_test_id("my-reply-save").click()
        await expect(dialog.get_by_test_id("my-reply")).to_have_count(1, timeout=LIVE)
        await expect(dialog.get_by_test_id("my-reply")).to_contain_text("/ship")
        await expect(shortcut).to_have_value("")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(page.get_by_test_id("my-replies-open")).to_be_focused()

        textarea = page.get_by_test_id("reply-text")
        await textarea.press_sequentially("/sh")
        await expect(offered(page)).to_have_count(1, timeout=LIVE)
        await expect(offered(page)).to_contain_text("mine")
        await textarea.press("Enter")
        await expect(textarea).to_have_value("Shipped today!")  # no name: no stray space before the "!"
        other_text = other.get_by_test_id("reply-text")  # the other tab was told (`canned_changed`)
        await other_text.press_sequentially("/sh")
        await expect(offered(other)).to_have_count(1, timeout=LIVE)

        await page.get_by_test_id("my-replies-open").click()
        await dialog.get_by_test_id("my-reply-edit").click()
        await expect(shortcut).to_have_value("ship")
        await text.fill("It left the warehouse today.")
        await dialog.get_by_test_id("my-reply-save").click()
        await expect(dialog.get_by_test_id("my-reply")).to_contain_text("It left the warehouse", timeout=LIVE)
        delete = dialog.get_by_test_id("my-reply-delete")
        await delete.click()
        await expect(dialog.get_by_test_id("my-reply")).to_have_count(1)  # the first press asks
        await delete.click()
        await expect(dialog.get_by_test_id("my-reply")).to_have_count(0, timeout=LIVE)
        await dialog.get_by_test_id("my-replies-close").click()
        await textarea.fill("")
        await textarea.press_sequentially("/sh")
        await expect(page.get_by_test_id("canned-popup")).to_be_hidden()
    finally:
        await context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_list_and_my_replies_have_no_serious_violation(browser, make_server, scheme):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server(extra=TEAMS)
    await shared_replies(server)
    context, page = await agent_page(browser, server, "alice", scheme=scheme)
    try:
        await open_conversation(page, server, CUSTOMER, ALICE, "hello?")
        await page.get_by_test_id("reply-text").press_sequentially("/h")
        await expect(offered(page)).to_have_count(2, timeout=LIVE)
        found = await violations(page, "the canned list")
        await page.get_by_test_id("reply-text").press("Escape")
        await page.get_by_test_id("my-replies-open").click()
        await page.get_by_test_id("my-reply-save").click()  # empty: refused, the errors shown
        await expect(page.get_by_test_id("my-reply-shortcut-error")).to_be_visible(timeout=LIVE)
        found += await violations(page, "my replies")
        await page.screenshot(path=f"/tmp/didchat-canned-{scheme}.png")  # to look at when this fails
        assert not found, "\n".join(found)
    finally:
        await context.close()


async def test_on_a_phone_the_list_fits_and_a_tap_inserts(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server(extra=TEAMS)
    await shared_replies(server)
    context, page = await agent_page(browser, server, "alice", size=(390, 844))
    try:
        await open_conversation(page, server, CUSTOMER, ALICE, "hi")
        await page.get_by_test_id("reply-text").press_sequentially("/")
        await expect(offered(page)).to_have_count(4, timeout=LIVE)
        await on_screen(page, "canned-popup")
        await no_horizontal_scroll(page, "the canned list on a phone")
        await page.screenshot(path="/tmp/didchat-canned-phone.png")  # to look at when this fails
        await offered(page).filter(has_text="/help").tap()
        await expect(page.get_by_test_id("reply-text")).to_have_value("How can I help you today?")
        await expect(page.get_by_test_id("reply-text")).to_be_focused()
        await on_screen(page, "reply-send")
        await page.get_by_test_id("my-replies-open").click()
        await on_screen(page, "my-reply-save")
        await no_horizontal_scroll(page, "my replies on a phone")
    finally:
        await context.close()
