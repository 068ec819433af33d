"""Never lose a typed message, and a truthful connection state (issue 11, point 8): a send made while the
server is away is kept in the browser's storage, shown as queued, and delivered once after the tab is closed
and reopened, or reloaded, or while another tab is open; another agent on the same browser never sends it;
a silent link (no close ever comes) shows "Reconnecting…" within 2 s."""
from __future__ import annotations

import asyncio
import re
import time
from types import SimpleNamespace

import pytest

from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - `browser` is a fixture
from tests.browser.ui import log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
STORED = re.compile("^(queued|sent|delivered)$")  # a stored message's status (a pending one says "sending")
QUIET = 1.0  # s: long enough for a second copy of a send to reach the provider, were one made


async def saved_sends(page, user: str = "alice") -> int:
    """How many sends this browser keeps for `user` (localStorage)."""
    return await page.evaluate(
        "(user) => Object.keys(localStorage).filter((k) => k.startsWith(`didchat.outbox|${user}|`)).length", user)


def bubbles(page, text: str):
    return page.locator('[data-testid="message"][data-direction="out"]').filter(has_text=text)


def sent_bodies(server) -> list[str]:
    return [r["Body"] for r in server.twilio_api.requests]


async def open_conversation(page, server) -> None:
    from playwright.async_api import expect

    await server.simulate_sms(server.customer, server.alice_number, "are you there?")
    item = page.locator(f'[data-testid="conversation-item"][data-contact="{server.customer}"]')
    await item.click()
    await expect(page.get_by_test_id("reply-text")).to_be_enabled(timeout=LIVE)


async def send(page, text: str) -> None:
    await page.get_by_test_id("reply-text").fill(text)
    await page.get_by_test_id("reply-text").press("Enter")


async def stop_and_see_reconnecting(server, *pages) -> None:
    """Stop the server; each page says "Reconnecting…" within 2 s."""
    from playwright.async_api import expect

    lost = time.monotonic()
    stopping = asyncio.create_task(server.stop())
    for page in pages:
        await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "reconnecting",
                                                                                timeout=2000)
    assert time.monotonic() - lost < 2.5
    await stopping


async def log_in_as(page, url: str, name: str) -> None:
    from playwright.async_api import expect

    await page.get_by_test_id("login-username").fill(name)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)


async def test_a_message_sent_while_the_server_is_stopped_is_delivered_once_after_the_tab_is_closed_and_reopened(
        browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, server, ready=True)
    await open_conversation(page, server)
    await stop_and_see_reconnecting(server, page)

    await send(page, "typed while the server was down")
    pending = bubbles(page, "typed while the server was down")
    await expect(pending.get_by_test_id("message-status")).to_have_text("Queued")
    await expect(page.get_by_test_id("connection-state")).to_have_text("Reconnecting…")
    assert await saved_sends(page) == 1
    where = page.url  # #c=ID: the new tab opens the same conversation
    await page.close()

    await server.start()
    page = await context.new_page()  # the same browser: its storage and the refresh cookie are kept
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(where)
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    await server.twilio_api.wait_for_requests(1, timeout=10)
    sent = bubbles(page, "typed while the server was down")
    await expect(sent.get_by_test_id("message-status")).to_have_attribute("data-status", STORED, timeout=LIVE)
    await expect(sent).to_have_count(1)
    await asyncio.sleep(QUIET)
    assert sent_bodies(server) == ["typed while the server was down"]
    await expect(sent).to_have_count(1)
    assert await saved_sends(page) == 0
    assert errors == []


async def test_a_reload_while_a_send_is_unanswered_sends_it_again_with_the_same_client_id_stored_once(
        browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    from chat.domain.outbound import store_send

    server = await make_server()
    page = await (await browser.new_context()).new_page()
    await log_in(page, server, ready=True)
    await open_conversation(page, server)

    commit, release = server.services.commit, asyncio.Event()
    real_run = commit.run

    async def sends_held(unit):  # the store takes no send until released (logins and refreshes go on)
        if getattr(unit, "func", None) is store_send:
            await release.wait()
        return await real_run(unit)

    commit.run = sends_held
    await send(page, "sent just before a reload")
    pending = bubbles(page, "sent just before a reload")
    await expect(pending.get_by_test_id("message-status")).to_have_attribute("data-status", "sending")
    client_id = await pending.get_attribute("data-client-id")
    assert client_id and await saved_sends(page) == 1

    await page.reload()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", re.compile(
        "^(connected|reconnecting)$"), timeout=LIVE)  # its resend is held too, so the link may be rebuilt meanwhile
    await expect(page.locator(f'[data-client-id="{client_id}"]')).to_have_count(1, timeout=LIVE)  # the same send
    commit.run = real_run
    release.set()
    await server.twilio_api.wait_for_requests(1, timeout=10)
    sent = bubbles(page, "sent just before a reload")
    await expect(sent.get_by_test_id("message-status")).to_have_attribute("data-status", STORED, timeout=LIVE)
    await asyncio.sleep(QUIET)
    assert sent_bodies(server) == ["sent just before a reload"]
    await expect(sent).to_have_count(1)
    assert await saved_sends(page) == 0
    await page.reload()  # and the server holds it once
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    await expect(bubbles(page, "sent just before a reload")).to_have_count(1, timeout=LIVE)


async def test_two_tabs_show_a_send_queued_in_one_of_them_once_and_it_goes_once(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context()
    first = await context.new_page()
    await log_in(first, server, ready=True)
    await open_conversation(first, server)
    second = await context.new_page()
    await second.goto(first.url)  # the same session (refresh cookie), the same conversation
    await expect(second.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    await stop_and_see_reconnecting(server, first, second)

    await send(first, "queued in the first tab")
    for page in (first, second):  # the second tab sees it from the browser's storage
        queued = bubbles(page, "queued in the first tab")
        await expect(queued).to_have_count(1)
        await expect(queued.get_by_test_id("message-status")).to_have_text("Queued")

    await server.start()
    await server.twilio_api.wait_for_requests(1, timeout=10)
    for page in (first, second):
        await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected",
                                                                                timeout=LIVE)
        sent = bubbles(page, "queued in the first tab")
        await expect(sent.get_by_test_id("message-status")).to_have_attribute("data-status", STORED, timeout=LIVE)
    await asyncio.sleep(QUIET)
    assert sent_bodies(server) == ["queued in the first tab"]
    for page in (first, second):
        await expect(bubbles(page, "queued in the first tab")).to_have_count(1)
        assert await saved_sends(page) == 0


async def test_another_agent_logging_in_on_the_same_browser_never_sends_the_first_ones_queue(
        browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, server, ready=True)
    await open_conversation(page, server)
    await stop_and_see_reconnecting(server, page)
    await send(page, "alice's, not bob's")
    await expect(bubbles(page, "alice's, not bob's").get_by_test_id("message-status")).to_have_text("Queued")
    await page.close()
    await context.clear_cookies()  # Alice's session is not restored: the login form, for Bob

    await server.start()
    page = await context.new_page()
    await page.goto(server.url + "/")
    await log_in_as(page, server.url, "bob")
    await asyncio.sleep(QUIET)  # Bob is connected and synced: anything of his queue has gone by now
    assert sent_bodies(server) == []
    assert await saved_sends(page, "alice") == 1
    await page.get_by_test_id("logout").click()  # Bob's explicit logout forgets his queue, not Alice's
    await expect(page.get_by_test_id("login-username")).to_be_visible(timeout=LIVE)
    assert await saved_sends(page, "alice") == 1

    await log_in_as(page, server.url, "alice")  # hers goes with her next login
    await server.twilio_api.wait_for_requests(1, timeout=10)
    await asyncio.sleep(QUIET)
    assert sent_bodies(server) == ["alice's, not bob's"]
    assert await saved_sends(page, "alice") == 0


async def test_a_refused_send_stays_with_the_reason_retry_and_discard_even_after_a_reload(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    page = await (await browser.new_context()).new_page()
    await log_in(page, server, ready=True)
    await open_conversation(page, server)
    too_long = "0123456789" * 170  # 1,700 characters: the server takes 1,600 at most
    await send(page, too_long)
    refused = page.locator('[data-testid="message"][data-client-id]')
    await expect(refused.get_by_test_id("message-status")).to_have_attribute("data-status", "refused", timeout=LIVE)
    await expect(refused.get_by_test_id("message-status")).to_contain_text("Not sent:")
    await expect(refused.get_by_test_id("message-retry")).to_be_visible()
    assert await saved_sends(page) == 1

    await page.reload()  # typed text is never lost: it is still there, still refused, not sent again
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)
    await expect(refused.get_by_test_id("message-status")).to_have_attribute("data-status", "refused")
    await expect(refused.get_by_test_id("message-text")).to_have_text(too_long)
    await refused.get_by_test_id("message-discard").click()
    await expect(refused).to_have_count(0)
    assert await saved_sends(page) == 0
    assert sent_bodies(server) == []


async def test_a_tab_opened_while_the_refresh_cannot_reach_the_server_waits_for_it_instead_of_asking_to_log_in(
        browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, server)
    await page.close()
    page = await context.new_page()
    await page.route("**/api/refresh", lambda route: route.abort())  # the page loads; its refresh gets no answer
    await page.goto(server.url + "/")
    await expect(page.get_by_test_id("loading-text")).to_contain_text("Cannot reach the server", timeout=LIVE)
    await expect(page.get_by_test_id("login-username")).to_be_hidden()
    await page.unroute("**/api/refresh")  # the server answers again: the refresh cookie signs her in
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=LIVE)


class SilentLink:
    """A TCP relay to the server that can go silent without closing anything: what a cut network or a
    frozen server look like to the browser (its connections stay open, nothing comes back)."""

    def __init__(self, port: int):
        self.port, self.upstream, self.silent = 0, port, False
        self.tasks: set[asyncio.Task] = set()
        self.writers: list[asyncio.StreamWriter] = []
        self.held: list[asyncio.StreamWriter] = []  # connections made while silent: taken, never answered

    async def start(self) -> SilentLink:
        self.server = await asyncio.start_server(self.relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def relay(self, reader, writer) -> None:
        self.writers.append(writer)
        if self.silent:
            self.held.append(writer)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.writers.append(up_writer)
        cut = {"cut": False}
        for a, b in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self.pump(a, b, cut))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def pump(self, reader, writer, cut) -> None:
        while data := await reader.read(65536):
            cut["cut"] = cut["cut"] or self.silent  # once silent, this connection stays dead
            if not cut["cut"]:
                writer.write(data)
                await writer.drain()

    def mend(self) -> None:
        """The network is back: what was tried meanwhile fails at last (as a timed-out connect would)."""
        self.silent = False
        for writer in self.held:
            writer.close()
        self.held.clear()

    async def close(self) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        for writer in self.writers:
            writer.close()


async def test_a_silent_link_shows_reconnecting_within_2_s_and_a_send_made_meanwhile_goes_once(
        browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    link = await SilentLink(server.config.port).start()
    try:
        page = await (await browser.new_context()).new_page()
        await log_in(page, SimpleNamespace(url=f"http://127.0.0.1:{link.port}", agent=server.agent), ready=True)
        await open_conversation(page, server)
        state = page.get_by_test_id("connection-state")
        await expect(state).to_have_attribute("data-state", "connected")

        await page.evaluate("""() => {  // the moment the indicator changes, to the millisecond (expect polls coarser)
            const node = document.querySelector('[data-testid="connection-state"]');
            new MutationObserver(() => { if (node.dataset.state === "reconnecting") window.lostAt ??= Date.now(); })
                .observe(node, {attributes: true, attributeFilter: ["data-state"]});
        }""")
        lost = await page.evaluate("Date.now()")
        link.silent = True  # no close, no error: only silence
        await expect(state).to_have_attribute("data-state", "reconnecting", timeout=2500)
        assert await page.evaluate("window.lostAt") - lost < 2000
        await send(page, "sent into the silence")
        pending = bubbles(page, "sent into the silence")
        await expect(pending.get_by_test_id("message-status")).to_have_attribute("data-status", "sending")

        link.mend()  # the network is back: the dead link is given up and a new one made
        await expect(state).to_have_attribute("data-state", "connected", timeout=LIVE)
        await server.twilio_api.wait_for_requests(1, timeout=10)
        await expect(pending.get_by_test_id("message-status")).to_have_attribute("data-status", STORED, timeout=LIVE)
        await asyncio.sleep(QUIET)
        assert sent_bodies(server) == ["sent into the silence"]
        await expect(pending).to_have_count(1)
    finally:
        await link.close()
