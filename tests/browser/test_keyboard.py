"""Keyboard navigation in the agent client (issue 11, point 9): up and down through conversations from
anywhere, the conversation list's own arrows and Enter, the next unread, the composer, closing through the
Close button's rules, Escape for forms, the help list and a phone's back, and "?" for the list of keys."""
from __future__ import annotations

import pytest

from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.browser.ui import log_in
from tests.conftest import ALICE

pytestmark = pytest.mark.browser
CUSTOMERS = ["+12125550197", "+12125550198", "+12125550199"]
REQUIRED = '\nconversations: {outcomes: ["Resolved"], require_outcome: true}\n'


async def three_conversations(page, server) -> list[str]:
    """Three customers text Alice; their numbers in the list's order (the newest first)."""
    from playwright.async_api import expect

    for number in CUSTOMERS:
        assert (await server.simulate_sms(number, ALICE, f"hello from {number}"))[0] == 200
    items = page.get_by_test_id("conversation-item")
    await expect(items).to_have_count(3, timeout=LIVE)
    await expect(items.get_by_test_id("unread-badge")).to_have_count(3, timeout=LIVE)
    return await items.evaluate_all("items => items.map((li) => li.dataset.contact)")


def open_item(page):
    return page.locator('[data-testid="conversation-item"][aria-current="true"]')


async def start(browser, make_server, extra: str = "", size=(1280, 800)):  # noqa: F811
    server = await make_server(extra=extra)
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, server, ready=True)
    return server, page, errors


async def test_alt_arrows_move_through_conversations_from_anywhere_and_keep_each_draft(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server, page, errors = await start(browser, make_server)
    order = await three_conversations(page, server)
    reply = page.get_by_test_id("reply-text")

    await page.keyboard.press("Alt+ArrowDown")  # none open: the first
    await expect(open_item(page)).to_have_attribute("data-contact", order[0])
    await expect(reply).to_be_focused()
    await page.keyboard.type("half a thought")
    await page.keyboard.press("Alt+ArrowDown")  # from the composer
    await expect(open_item(page)).to_have_attribute("data-contact", order[1])
    await expect(page.get_by_test_id("conversation-title")).to_contain_text(order[1])
    await expect(reply).to_have_value("")
    await page.keyboard.press("Alt+ArrowDown")
    await page.keyboard.press("Alt+ArrowDown")  # the last stays the last
    await expect(open_item(page)).to_have_attribute("data-contact", order[2])
    await page.keyboard.press("Alt+ArrowUp")
    await page.keyboard.press("Alt+ArrowUp")
    await expect(open_item(page)).to_have_attribute("data-contact", order[0])
    await expect(reply).to_have_value("half a thought")  # nothing typed is lost by moving
    assert errors == []


async def test_the_list_takes_arrows_home_end_and_enter_and_r_or_alt_r_focus_the_composer(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server, page, errors = await start(browser, make_server)
    order = await three_conversations(page, server)
    items = page.get_by_test_id("conversation-item")
    reply = page.get_by_test_id("reply-text")

    await items.first.focus()
    assert (await server.simulate_sms(order[0], ALICE, "still the newest"))[0] == 200  # the list is rebuilt
    await expect(items.first.get_by_test_id("conversation-preview")).to_have_text("still the newest", timeout=LIVE)
    await expect(items.first).to_be_focused()  # and the keyboard keeps its place
    await page.keyboard.press("ArrowDown")
    await expect(items.nth(1)).to_be_focused()
    await page.keyboard.press("End")
    await expect(items.nth(2)).to_be_focused()
    await page.keyboard.press("Home")
    await expect(items.nth(0)).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await expect(open_item(page)).to_have_attribute("data-contact", order[1])

    await items.nth(1).focus()
    await page.keyboard.press("r")  # outside a text field: to the composer, typing nothing
    await expect(reply).to_be_focused()
    await expect(reply).to_have_value("")
    await page.keyboard.press("r")  # inside it: a letter
    await expect(reply).to_have_value("r")
    await items.nth(2).focus()
    await page.keyboard.press("Alt+r")
    await expect(reply).to_be_focused()
    await expect(open_item(page)).to_have_attribute("data-contact", order[1])  # focusing opens nothing else
    assert errors == []


async def test_alt_n_opens_the_next_unread_conversation_and_says_when_there_is_none(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server, page, errors = await start(browser, make_server)
    order = await three_conversations(page, server)
    for number in order:
        await page.keyboard.press("Alt+n")
        await expect(open_item(page)).to_have_attribute("data-contact", number)
    await expect(page.get_by_test_id("unread-badge")).to_have_count(0)
    await page.keyboard.press("Alt+n")
    await expect(page.get_by_test_id("error-banner")).to_contain_text("No conversation has unread messages")
    await expect(open_item(page)).to_have_attribute("data-contact", order[2])

    assert (await server.simulate_sms(order[1], ALICE, "one more thing"))[0] == 200
    await expect(page.get_by_test_id("unread-badge")).to_have_count(1, timeout=LIVE)
    await page.keyboard.press("Alt+n")
    await expect(open_item(page)).to_have_attribute("data-contact", order[1])
    assert errors == []


async def test_alt_c_closes_through_the_close_buttons_rules(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server, page, errors = await start(browser, make_server, extra=REQUIRED)
    await three_conversations(page, server)
    await page.keyboard.press("Alt+ArrowDown")
    await page.keyboard.press("Alt+c")  # no outcome picked, one is required: refused as the button is
    await expect(page.get_by_test_id("error-banner")).to_contain_text("Pick an outcome")
    await expect(page.get_by_test_id("close-outcome")).to_be_focused()
    await expect(page.get_by_test_id("close-conversation")).to_be_visible()

    await page.get_by_test_id("close-outcome").select_option("Resolved")
    await page.get_by_test_id("reply-text").focus()
    await page.keyboard.press("Alt+c")
    await expect(page.get_by_test_id("reopen-conversation")).to_be_visible(timeout=LIVE)
    await expect(open_item(page).get_by_test_id("conversation-status")).to_contain_text("closed · Resolved")
    await page.keyboard.press("Alt+c")  # closed already: nothing to do, nothing broken
    await expect(page.get_by_test_id("reopen-conversation")).to_be_visible()
    assert errors == []


async def test_question_mark_lists_the_keys_and_escape_closes_forms_and_the_list(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server, page, errors = await start(browser, make_server)
    await three_conversations(page, server)
    help_list = page.get_by_test_id("keys-help")

    await page.keyboard.press("?")
    await expect(help_list).to_be_visible()
    await expect(help_list.get_by_test_id("keys-list")).to_contain_text("Alt+N")
    await expect(page.get_by_test_id("keys-close")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(help_list).to_be_hidden()
    await page.get_by_test_id("keys-open").click()  # the same list from a button
    await expect(help_list).to_be_visible()
    await page.get_by_test_id("keys-close").click()
    await expect(help_list).to_be_hidden()

    await page.keyboard.press("Alt+ArrowDown")
    await page.get_by_test_id("transfer-open").click()
    await expect(page.get_by_test_id("transfer-form")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("transfer-form")).to_be_hidden()
    await expect(page.get_by_test_id("transfer-open")).to_be_focused()
    await page.keyboard.press("Escape")  # a desktop shows the list beside the conversation: it stays open
    await expect(page.get_by_test_id("conversation-title")).to_be_visible()
    assert errors == []


async def test_on_a_phone_escape_goes_back_to_the_list(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server, page, errors = await start(browser, make_server, size=(390, 844))
    order = await three_conversations(page, server)
    await page.get_by_test_id("conversation-item").first.click()
    await expect(page.get_by_test_id("back-to-list")).to_be_visible()
    await expect(page.get_by_test_id("conversation-list")).to_be_hidden()
    await page.keyboard.press("Escape")  # from the composer
    await expect(page.get_by_test_id("conversation-list")).to_be_visible()
    await expect(page.get_by_test_id("reply-text")).to_be_hidden()
    await page.keyboard.press("Alt+ArrowDown")  # and the keys go on working in one view at a time
    await expect(page.get_by_test_id("conversation-title")).to_contain_text(order[0])
    await page.get_by_test_id("back-to-list").click()
    second = page.get_by_test_id("conversation-item").nth(1)
    await second.click()
    await expect(page.get_by_test_id("conversation-list")).to_be_hidden()
    await page.keyboard.press("Escape")
    await expect(second).to_be_focused()  # back where the agent left the list, not at its top
    assert errors == []
