"""Closing, reopening and snoozing a conversation in the agent's browser client (real Chromium), and
the earlier conversation shown above the customer's next one."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.chat.test_routes import routed  # noqa: F401 - the fixture
from tests.conftest import ALICE, CUSTOMER, PASSWORD

pytestmark = pytest.mark.browser
OUTCOMES = '\nconversations: {outcomes: ["Resolved", "Sales (EN)"]}\n'


async def test_close_with_an_outcome_reopen_snooze_and_the_earlier_conversation(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server(extra=OUTCOMES)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(server.url + "/")
        await page.get_by_test_id("login-username").fill("alice")
        await page.get_by_test_id("login-password").fill(PASSWORD)
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
        if await page.get_by_test_id("presence").get_attribute("data-state") != "ready":
            await page.get_by_test_id("presence").click()
        await expect(page.get_by_test_id("presence")).to_have_attribute("data-state", "ready", timeout=LIVE)

        assert (await server.simulate_sms(CUSTOMER, ALICE, "where is my parcel?"))[0] == 200
        items = page.get_by_test_id("conversation-item")
        await expect(items).to_have_count(1, timeout=LIVE)
        await items.first.click()
        status = items.first.get_by_test_id("conversation-status")

        await page.get_by_test_id("close-outcome").select_option("Sales (EN)")
        await page.get_by_test_id("close-conversation").click()
        await expect(status).to_contain_text("closed · Sales (EN)", timeout=LIVE)
        await expect(page.get_by_test_id("reply-text")).to_be_disabled()
        await expect(page.get_by_test_id("close-conversation")).to_be_hidden()
        await page.get_by_test_id("new-conversation").click()  # a new conversation may be written, after a closed one
        await expect(page.get_by_test_id("reply-text")).to_be_enabled()
        await items.first.click()

        await page.get_by_test_id("reopen-conversation").click()
        await expect(status).not_to_contain_text("closed", timeout=LIVE)
        await expect(page.get_by_test_id("reply-text")).to_be_enabled()

        await page.get_by_test_id("snooze-choice").select_option("3600")
        await expect(status).to_contain_text("snoozed until", timeout=LIVE)
        await expect(page.get_by_test_id("snoozed-note")).to_be_visible()
        await page.get_by_test_id("snooze-choice").select_option("off")
        await expect(status).not_to_contain_text("snoozed", timeout=LIVE)
        await page.get_by_test_id("snooze-choice").select_option("at")  # a time of her choosing
        later = (datetime.now() + timedelta(days=3)).replace(hour=10, minute=30)
        await page.get_by_test_id("snooze-at").fill(later.strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_test_id("snooze-at-submit").click()
        await expect(page.get_by_test_id("snoozed-note")).to_contain_text("10:30", timeout=LIVE)
        await expect(page.get_by_test_id("snooze-at-form")).to_be_hidden()
        await page.get_by_test_id("snooze-choice").select_option("off")
        await expect(status).not_to_contain_text("snoozed", timeout=LIVE)

        await page.get_by_test_id("close-conversation").click()  # no outcome: none is required
        await expect(status).to_have_text("closed", timeout=LIVE)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "one more thing"))[0] == 200
        await expect(items).to_have_count(2, timeout=LIVE)
        newest = page.locator('[data-testid="conversation-item"]:not(.closed)')
        await newest.click()
        earlier = page.get_by_test_id("earlier-conversation")
        await expect(earlier).to_have_count(1, timeout=LIVE)
        await expect(earlier).to_contain_text("where is my parcel?")
        await expect(page.get_by_test_id("transcript")).to_contain_text("one more thing")
        assert errors == []
    finally:
        await context.close()


async def login(browser, server, name: str):  # noqa: F811 - browser is the fixture's value
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
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


async def test_a_transfer_between_two_agents_in_two_browsers(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    alice_context, alice = await login(browser, server, "alice")
    bob_context, bob = await login(browser, server, "bob")
    try:
        assert (await server.simulate_sms(CUSTOMER, ALICE, "my bill is wrong"))[0] == 200
        await expect(alice.get_by_test_id("conversation-item")).to_have_count(1, timeout=LIVE)
        await alice.get_by_test_id("conversation-item").first.click()
        await alice.get_by_test_id("transfer-open").click()
        await alice.get_by_test_id("transfer-target").select_option(label="Bob")
        await alice.get_by_test_id("transfer-note").fill("billing question, be kind")
        await alice.get_by_test_id("transfer-submit").click()
        await expect(alice.get_by_test_id("conversation-item")).to_have_count(0, timeout=LIVE)
        await expect(alice.get_by_test_id("error-banner")).to_contain_text("Transferred to Bob")

        await expect(bob.get_by_test_id("conversation-item")).to_have_count(1, timeout=LIVE)
        await bob.get_by_test_id("conversation-item").first.click()
        transcript = bob.get_by_test_id("transcript")
        await expect(transcript).to_contain_text("my bill is wrong", timeout=LIVE)
        await expect(transcript).to_contain_text("Transferred by Alice to Bob: billing question, be kind")
        await bob.get_by_test_id("reply-text").fill("Sorting it out now")
        await bob.get_by_test_id("reply-send").click()
        [request] = await server.twilio_api.wait_for_requests(1, timeout=10)
        assert request["Body"] == "Sorting it out now" and request["From"] == ALICE
    finally:
        await alice_context.close()
        await bob_context.close()


async def test_a_conversation_offered_to_the_team_is_taken_from_the_waiting_list(browser, routed):  # noqa: F811
    from playwright.async_api import expect

    from tests.conftest import MAIN

    shared = f'{{number: "{MAIN}", voice: false}}'
    server = await routed(lambda text: text.replace(shared, f'{{number: "{MAIN}", voice: false, team: support}}'),
                          "\nteams:\n  support: {members: [alice, bob], distribution: offer_all}\n")
    context, page = await login(browser, server, "alice")
    try:
        assert (await server.simulate_sms(CUSTOMER, MAIN, "anyone from support?"))[0] == 200
        item = page.get_by_test_id("queue-item")
        await expect(item).to_have_count(1, timeout=LIVE)
        await expect(item).to_contain_text("support #1")
        await expect(page.get_by_test_id("conversation-item")).to_have_count(0)
        await item.get_by_test_id("queue-take").click()
        await expect(page.get_by_test_id("conversation-item")).to_have_count(1, timeout=LIVE)
        await expect(page.get_by_test_id("queue-item")).to_have_count(0)
        await expect(page.get_by_test_id("transcript")).to_contain_text("anyone from support?", timeout=LIVE)
    finally:
        await context.close()


async def test_a_supervisor_takes_over_a_conversation_from_the_board(browser, routed):  # noqa: F811
    from playwright.async_api import expect

    server = await routed(lambda text: text.replace("{name: bob, display_name: Bob,",
                                                    "{name: bob, display_name: Bob, role: supervisor,"))
    alice_context, alice = await login(browser, server, "alice")
    bob_context, bob = await login(browser, server, "bob")
    try:
        await expect(alice.get_by_test_id("board-open")).to_be_hidden()  # agents never see it
        assert (await server.simulate_sms(CUSTOMER, ALICE, "I want the manager"))[0] == 200
        await expect(alice.get_by_test_id("conversation-item")).to_have_count(1, timeout=LIVE)

        await bob.get_by_test_id("board-open").click()
        row = bob.get_by_test_id("board-conversation")
        await expect(row).to_have_count(1, timeout=LIVE)
        await expect(row).to_contain_text("alice")
        await row.get_by_test_id("board-monitor-open").click()
        await expect(bob.get_by_test_id("board-monitor")).to_contain_text("I want the manager", timeout=LIVE)
        assert (await server.simulate_sms(CUSTOMER, ALICE, "Now, please"))[0] == 200
        await expect(bob.get_by_test_id("board-monitor-messages")).to_contain_text("Now, please", timeout=LIVE)  # live
        await row.get_by_test_id("board-take-over").click()
        await expect(bob.get_by_test_id("conversation-item")).to_have_count(1, timeout=LIVE)
        await expect(alice.get_by_test_id("conversation-item")).to_have_count(0, timeout=LIVE)
        await expect(alice.get_by_test_id("error-banner")).to_contain_text("went to Bob")
        await bob.get_by_test_id("conversation-item").first.click()
        await expect(bob.get_by_test_id("transcript")).to_contain_text("Taken over by Bob")
    finally:
        await alice_context.close()
        await bob_context.close()


async def test_the_callback_number_picker_shows_names_and_leaves_a_new_conversation_to_the_rules(browser, routed):  # noqa: F811
    from playwright.async_api import expect

    from tests.chat.test_callback_numbers import UK, rich

    server = await routed(rich(select='[{prefix: "+44", number: uk}]'))
    context, page = await login(browser, server, "alice")
    try:
        await page.get_by_test_id("new-conversation").click()
        picker = page.get_by_test_id("from-picker")
        await expect(picker).to_have_value("")  # automatic
        await expect(picker.locator("option")).to_contain_text(["Automatic (your rules)", "personal", "Sales (EN) — +12125550100 (en, sales)",
                                                                "UK line — +12125550160 (en-GB)"])
        await page.get_by_test_id("new-to").fill("+44 20 7183 8750")
        await page.get_by_test_id("reply-text").fill("Hello London")
        await page.get_by_test_id("reply-send").click()
        [request] = await server.twilio_api.wait_for_requests(1, timeout=10)
        assert request["From"] == UK and request["To"] == "+442071838750"
        await expect(page.get_by_test_id("conversation-item")).to_have_count(1, timeout=LIVE)
        await expect(picker).to_have_value(UK)  # the conversation now presents the UK line
    finally:
        await context.close()
