"""The administration pages in a real Chromium, on both databases: an admin adds an agent and gives her
a number; she logs in to the agent client and receives an SMS on it, with no restart. A bad field is
named beside it; a supervisor sees the tables and no form; an agent is turned away. No CSP
violation and no console error on the way.
"""
from __future__ import annotations

import pytest

from chat.agents import admin
from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - `browser` is a fixture
from tests.browser.test_csp import WATCH_CSP
from tests.conftest import CUSTOMER, PASSWORD

pytestmark = pytest.mark.browser
NEW_NUMBER = "+14155550177"


async def open_admin(browser, server, name: str, password: str = PASSWORD):  # noqa: F811
    from playwright.async_api import expect

    context = await browser.new_context()
    await context.add_init_script(WATCH_CSP)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.text.startswith(
        "Failed to load resource") else None)  # the answers refused on purpose (401 before login, 422) are not errors
    await page.goto(server.url + "/admin")
    await page.get_by_test_id("login-username").fill(name)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-username")).to_be_hidden(timeout=LIVE)
    return page, errors


async def test_an_admin_adds_an_agent_and_her_number_and_she_gets_an_sms_without_a_restart(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    page, errors = await open_admin(browser, server, "ada")
    await expect(page.get_by_test_id("admin-user")).to_have_text("Ada Admin (admin)")
    await page.get_by_test_id("field-name").fill("Carol!")
    await page.get_by_test_id("field-password").fill("carol-password-1")
    await page.get_by_test_id("admin-submit").click()
    await expect(page.get_by_test_id("field-name-error")).to_contain_text("should match pattern", timeout=LIVE)
    await expect(page.get_by_test_id("field-name")).to_have_attribute("aria-invalid", "true")
    await page.get_by_test_id("field-name").fill("carol")
    await page.get_by_test_id("field-display_name").fill("Carol")
    await page.get_by_test_id("field-password").fill("carol-password-1")
    await page.get_by_test_id("admin-submit").click()
    await expect(page.get_by_test_id("admin-status")).to_contain_text("Added carol", timeout=LIVE)
    await expect(page.locator('[data-testid="admin-row"][data-key="carol"]')).to_be_visible()

    await page.get_by_test_id("tab-numbers").click()
    await expect(page.get_by_test_id("field-number")).to_be_visible(timeout=LIVE)
    await page.get_by_test_id("field-number").fill(NEW_NUMBER)
    await page.get_by_test_id("field-user").select_option("carol")
    await page.get_by_test_id("field-connector").select_option("tw")
    await page.get_by_test_id("admin-submit").click()
    await expect(page.locator(f'[data-testid="admin-row"][data-key="{NEW_NUMBER}"] [data-column="user"]')).to_have_text(
        "carol", timeout=LIVE)

    agent = await (await browser.new_context()).new_page()
    await agent.goto(server.url + "/")
    await agent.get_by_test_id("login-username").fill("carol")
    await agent.get_by_test_id("login-password").fill("carol-password-1")
    await agent.get_by_test_id("login-submit").click()
    await expect(agent.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    await server.simulate_sms(CUSTOMER, NEW_NUMBER, "hello carol")
    item = agent.locator(f'[data-testid="conversation-item"][data-contact="{CUSTOMER}"]')
    await expect(item).to_be_visible(timeout=LIVE)
    await item.click()
    await expect(agent.locator('[data-testid="message"][data-direction="in"]').filter(has_text="hello carol")).to_be_visible()

    await page.get_by_test_id("tab-audit").click()
    await expect(page.locator('[data-testid="admin-row"] [data-column="action"]').first).to_have_text("login", timeout=LIVE)
    assert await page.evaluate("window.__violations || []") == []
    assert errors == []


async def test_a_supervisor_sees_no_form_and_an_agent_is_turned_away(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server(extra="")
    server.config_path.write_text(server.config_path.read_text().replace(
        "{name: bob, display_name: Bob,", "{name: bob, display_name: Bob, role: supervisor,"))
    server.reload_config()
    await server.stop()
    await server.start()
    page, errors = await open_admin(browser, server, "bob")
    await expect(page.locator('[data-testid="admin-row"][data-key="alice"]')).to_be_visible(timeout=LIVE)
    await expect(page.get_by_test_id("admin-form")).to_be_hidden()
    await expect(page.get_by_role("button", name="Delete alice")).to_have_count(0)
    await page.get_by_test_id("tab-connectors").click()
    await expect(page.locator('[data-testid="admin-row"][data-key="tw"] [data-column="state"]')).to_have_text(
        "configured", timeout=LIVE)
    agent, _ = await open_admin(browser, server, "alice")
    await expect(agent.get_by_test_id("denied")).to_be_visible(timeout=LIVE)
    assert errors == []


async def test_the_api_reference_page_renders_every_operation_under_the_csp(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context()
    await context.add_init_script(WATCH_CSP)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(server.url + "/api/docs")
    await expect(page.get_by_text("didchat admin API").first).to_be_visible(timeout=LIVE)
    await expect(page.locator(".opblock-summary-path", has_text="/api/v1/users/{key}").first).to_be_visible()
    assert await page.locator(".opblock").count() == len(admin.every_operation())
    assert await page.evaluate("window.__violations || []") == []
    assert errors == []


async def test_scenario_files_show_their_problems_inline_and_save_when_they_pass(browser, make_server, tmp_path):  # noqa: F811
    from playwright.async_api import expect

    from tests.chat.test_admin_scenarios import BROKEN, THANKS
    from tests.chat.test_scenarios_live import write

    server = await make_server(extra=write(tmp_path, "other", "name: other\non: {}\n"))
    page, errors = await open_admin(browser, server, "ada")
    await page.get_by_test_id("tab-scenarios").click()
    await expect(page.locator('[data-testid="admin-row"][data-key="other"] [data-column="problems"]')).to_have_text(
        "none: it runs", timeout=LIVE)
    await page.get_by_test_id("field-name").fill("thanks")
    await page.get_by_test_id("field-text").fill(BROKEN)
    await page.get_by_test_id("admin-check").click()
    problems = page.get_by_test_id("field-text-error")
    await expect(problems).to_contain_text("line 6: on.message_received[1].timeout: required for a wait", timeout=LIVE)
    await expect(page.get_by_test_id("field-text")).to_have_attribute("aria-invalid", "true")
    await page.get_by_test_id("admin-submit").click()
    await expect(page.get_by_test_id("admin-status")).to_have_text("thanks.yaml was not saved", timeout=LIVE)
    assert not (tmp_path / "scenarios" / "thanks.yaml").exists()
    await page.get_by_test_id("field-text").fill(THANKS)
    await page.get_by_test_id("admin-submit").click()
    await expect(page.get_by_test_id("admin-status")).to_contain_text("Saved thanks.yaml", timeout=LIVE)
    await expect(page.locator('[data-testid="admin-row"][data-key="thanks"]')).to_be_visible()
    assert (tmp_path / "scenarios" / "thanks.yaml").read_text() == THANKS
    assert await page.evaluate("window.__violations || []") == []
    assert errors == []


async def test_an_admin_adds_and_changes_a_connector_and_its_secret_is_never_shown(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    from tests.chat.test_admin_connectors import NUMBER, SECRET, webhook

    server = await make_server()
    page, errors = await open_admin(browser, server, "ada")
    await page.get_by_test_id("tab-connectors").click()
    await page.get_by_test_id("field-type").select_option("generic")
    await expect(page.get_by_test_id("field-host")).to_be_hidden()  # an SMPP field, not a generic one's
    await page.get_by_test_id("field-name").fill("gen")
    await page.get_by_test_id("field-numbers").fill(NUMBER)
    await page.get_by_test_id("field-secret").fill("too-short")
    await page.get_by_test_id("field-send_url").fill("http://127.0.0.1:9/send")
    await page.get_by_test_id("admin-submit").click()
    await expect(page.get_by_test_id("field-secret-error")).to_contain_text("at least 16", timeout=LIVE)
    await page.get_by_test_id("field-secret").fill(SECRET)
    await page.get_by_test_id("admin-submit").click()
    await expect(page.get_by_test_id("admin-status")).to_contain_text("Added gen", timeout=LIVE)
    row = page.locator('[data-testid="admin-row"][data-key="gen"]')
    await expect(row.locator('[data-column="state"]')).to_have_text("configured")

    await row.get_by_role("button", name="Edit gen").click()
    await expect(page.get_by_test_id("field-name")).to_be_disabled()
    await expect(page.get_by_test_id("field-secret")).to_have_value("")
    await page.get_by_test_id("field-send_url").fill("http://127.0.0.1:9/other")
    await page.get_by_test_id("admin-submit").click()
    await expect(page.get_by_test_id("admin-status")).to_contain_text("Changed gen", timeout=LIVE)
    assert server.services.directory.config.connectors_by_number()[NUMBER].send_url == "http://127.0.0.1:9/other"

    await page.get_by_test_id("tab-numbers").click()
    await page.get_by_test_id("field-number").fill(NUMBER)
    await page.get_by_test_id("field-user").select_option("bob")
    await page.get_by_test_id("field-connector").select_option("gen")
    await page.get_by_test_id("admin-submit").click()
    await expect(page.locator(f'[data-testid="admin-row"][data-key="{NUMBER}"]')).to_be_visible(timeout=LIVE)
    assert await webhook(server, "gen", SECRET, "the secret kept through the edit") == 200
    await page.get_by_test_id("tab-audit").click()
    await expect(page.locator('[data-testid="admin-row"]').first).to_be_visible(timeout=LIVE)
    assert SECRET not in await page.content()
    assert await page.evaluate("window.__violations || []") == []
    assert errors == []
