"""Media in the agent client (real Chromium, both databases; issue 11, point 7): an inbound MMS through Twilio
(the fake serves its media behind the account's credentials) shows its picture decoded, a PDF as a link with
its name and size, and one the provider no longer has or one over the size limit in plain words, all under
the page's CSP; a reply with an attachment (uploaded with a progress bar) reaches Twilio with didchat's
MediaUrl and shows in the transcript; from an SMPP number there is no Attach button, and files sent from one
anyway are refused in the server's plain words."""
from __future__ import annotations

import struct
import uuid
import zlib

import pytest

from chat.domain.conversations import contact_id, open_conversation
from tests.browser.test_agent_ui import LIVE, browser  # noqa: F401 - the fixture
from tests.browser.test_csp import WATCH_CSP
from tests.browser.ui import log_in
from tests.conftest import ALICE, CUSTOMER, SMPP_NUMBER, free_port, smpp_connector, until

pytestmark = pytest.mark.browser
PDF = b"%PDF-1.4\n" + b"0" * 1200 + b"\n%%EOF\n"


def png(width: int, height: int) -> bytes:
    """A real PNG of one colour, that a browser decodes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x1d\x55\xcc" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def inbound_mms(server, text: str, media: list[tuple[str, str]]) -> None:
    """A signed Twilio webhook for an MMS from the customer to Alice, with these (url, content type)."""
    api = server.twilio_api
    [hook] = api.inbound(f"{server.url}/webhooks/twilio/tw", CUSTOMER, ALICE, text, uuid.uuid4().hex, media)
    status, body = await server.post(f"{server.url}/webhooks/twilio/tw", hook.body, hook.headers)
    assert status in (200, 204), body


async def opened(browser, server, width: int = 1280, height: int = 800):  # noqa: F811
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    await page.add_init_script(WATCH_CSP)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, server, ready=True)
    return context, page, errors


async def test_an_inbound_mms_shows_its_picture_a_pdf_link_and_what_is_gone(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    api = server.twilio_api
    api.served_media["photo.png"] = (png(8, 6), "image/png")
    api.served_media["terms.pdf"] = (PDF, "application/pdf")
    gone = api.media_url("old.png").replace(api.account_sid, "AC" + "0" * 32)  # the fake answers 404 for it
    context, page, errors = await opened(browser, server)
    try:
        await inbound_mms(server, "here you are", [(api.media_url("photo.png"), "image/png"),
                                                   (api.media_url("terms.pdf"), "application/pdf"), (gone, "image/png")])
        await page.get_by_test_id("conversation-item").click()
        message = page.get_by_test_id("transcript").get_by_test_id("message").filter(has_text="here you are")
        image = message.get_by_test_id("media-image")
        await expect(image).to_have_js_property("naturalWidth", 8, timeout=LIVE)  # fetched, and it decoded
        assert (await image.get_attribute("src")).startswith("blob:")
        link = message.get_by_test_id("media-link")
        await expect(link).to_have_text("attachment.pdf")
        await expect(link).to_have_attribute("download", "attachment.pdf")
        assert (await link.get_attribute("href")).startswith("blob:")
        await expect(message.get_by_test_id("media-size")).to_have_text(f"({len(PDF) / 1000:.1f} kB)")
        await expect(message.get_by_test_id("media-error")).to_have_text("Picture: no longer available.")
        assert await page.evaluate("window.__violations || []") == []

        # Another conversation opened: the blob: URLs of this one are revoked.
        src = await image.get_attribute("src")
        await page.get_by_test_id("new-conversation").click()
        await expect(message).to_have_count(0)
        status = await page.evaluate("(url) => fetch(url).then(() => 'alive', () => 'revoked')", src)
        assert status == "revoked"
        assert errors == []
    finally:
        await context.close()


async def test_media_over_the_size_limit_says_so(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server("media_max_bytes: 100\n")
    server.twilio_api.served_media["big.png"] = (png(64, 64) + b"\0" * 200, "image/png")
    context, page, errors = await opened(browser, server)
    try:
        await inbound_mms(server, "a big one", [(server.twilio_api.media_url("big.png"), "image/png")])
        await page.get_by_test_id("conversation-item").click()
        error = page.get_by_test_id("transcript").get_by_test_id("media-error")
        await expect(error).to_have_text("Picture: too large to show here (over the server's size limit).", timeout=LIVE)
        assert errors == []
    finally:
        await context.close()


async def test_a_reply_with_a_picture_reaches_twilio_with_its_media_url(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server()
    photo = png(12, 9)
    context, page, errors = await opened(browser, server)
    try:
        assert (await server.simulate_sms(CUSTOMER, ALICE, "can you send a photo?"))[0] == 200
        await page.get_by_test_id("conversation-item").click()
        attach = page.get_by_test_id("attach-open")
        await expect(attach).to_be_visible(timeout=LIVE)
        await page.get_by_test_id("attach-input").set_input_files(
            {"name": "shelf.png", "mimeType": "image/png", "buffer": photo})
        chosen = page.get_by_test_id("attachment")
        await expect(chosen).to_have_attribute("data-status", "ready", timeout=LIVE)
        await expect(chosen).to_contain_text("shelf.png")
        await page.get_by_test_id("reply-text").fill("Here it is")
        await page.get_by_test_id("reply-send").click()
        await expect(chosen).to_have_count(0)  # gone with the message

        await until(lambda: any(s.text == "Here it is" for s in server.twilio_api.sent), 10, "the reply at Twilio")
        [sent] = [s for s in server.twilio_api.sent if s.text == "Here it is"]
        [url] = sent.media
        assert url.startswith(f"{server.url}/media/out/") and url.endswith(".png")
        mine = page.get_by_test_id("transcript").locator('[data-testid="message"][data-direction="out"]')
        await expect(mine.get_by_test_id("media-image")).to_have_js_property("naturalWidth", 12, timeout=LIVE)
        await expect(mine.get_by_test_id("media-image")).to_have_attribute("alt", "shelf.png")

        # A picture alone, no text, goes too.
        await page.get_by_test_id("attach-input").set_input_files(
            {"name": "second.png", "mimeType": "image/png", "buffer": photo})
        await expect(chosen).to_have_attribute("data-status", "ready", timeout=LIVE)
        await page.get_by_test_id("reply-send").click()
        await until(lambda: len(server.twilio_api.sent) == 2, 10, "the picture alone at Twilio")
        assert server.twilio_api.sent[1].text == "" and len(server.twilio_api.sent[1].media) == 1
        assert errors == []
    finally:
        await context.close()


async def test_no_attach_button_from_an_smpp_number_and_a_plain_refusal(browser, make_server):  # noqa: F811
    from playwright.async_api import expect

    server = await make_server(connectors=smpp_connector(free_port()))
    alice_id = server.services.directory.by_name["alice"].id

    async def on_smpp(conn):
        return (await open_conversation(conn, await contact_id(conn, CUSTOMER), SMPP_NUMBER, alice_id, alice_id)).id
    await server.services.commit.run(on_smpp)
    context, page, errors = await opened(browser, server)
    try:
        await page.get_by_test_id("conversation-item").click()
        await expect(page.get_by_test_id("reply-text")).to_be_enabled(timeout=LIVE)
        attach = page.get_by_test_id("attach-open")
        await expect(attach).to_be_hidden()

        await page.get_by_test_id("new-conversation").click()
        picker = page.get_by_test_id("from-picker")
        await picker.select_option(ALICE)
        await expect(attach).to_be_visible()
        await page.get_by_test_id("attach-input").set_input_files(
            {"name": "map.png", "mimeType": "image/png", "buffer": png(4, 4)})
        await expect(page.get_by_test_id("attachment")).to_have_attribute("data-status", "ready", timeout=LIVE)
        await picker.select_option(SMPP_NUMBER)
        await expect(attach).to_be_hidden()
        await expect(page.get_by_test_id("attach-note")).to_have_text(
            f"{SMPP_NUMBER} sends no pictures or files: remove them to send the text alone, or pick another number.")
        await page.get_by_test_id("new-to").fill("+12125550177")
        await page.get_by_test_id("reply-text").fill("the map")
        await page.get_by_test_id("reply-send").click()
        refused = page.get_by_test_id("transcript").locator('[data-testid="message"][data-direction="out"]')
        await expect(refused).to_contain_text("smsc (SMPP) cannot send pictures or files: send the text alone",
                                              timeout=LIVE)
        assert errors == []
    finally:
        await context.close()
