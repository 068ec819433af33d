"""TwilioSender against the fake Twilio Messages API, and status callbacks back through TwilioWebhook."""
import asyncio

import pytest
from aiohttp import web

from gateway.messages import DELIVERED, QUEUED, UNDELIVERED, OutboundSms, SendError
from gateway.providers import Sender
from gateway.providers.twilio import TwilioSender, TwilioWebhook, twilio_form
from tests.gateway.reading import status

SMS = OutboundSms(connector="main", sender="+14155550100", recipient="+14155550123", text="Hello", reference="r1")


@pytest.fixture
async def sender(twilio_api):
    sender = TwilioSender(twilio_api.account_sid, twilio_api.auth_token, api_base=twilio_api.base_url)
    yield sender
    await sender.close()


async def test_success(sender: Sender, twilio_api):
    result = await sender.send(SMS)
    assert result.status == QUEUED
    (sid,) = result.provider_ids
    assert sid.startswith("SM") and len(sid) == 34
    [request] = await twilio_api.wait_for_requests(1)
    assert request == {"To": "+14155550123", "From": "+14155550100", "Body": "Hello"}
    assert twilio_api.messages[sid]["body"] == "Hello"


async def test_status_callback_and_messaging_service(sender, twilio_api):
    service = "MG" + "d" * 32
    sms = OutboundSms("main", service, "+14155550123", "Hi", "r2", status_callback="http://127.0.0.1:1/cb")
    await sender.send(sms)
    [request] = await twilio_api.wait_for_requests(1)
    assert request == {"To": "+14155550123", "MessagingServiceSid": service, "Body": "Hi",
                       "StatusCallback": "http://127.0.0.1:1/cb"}


async def test_invalid_to_is_permanent_with_code(sender):
    with pytest.raises(SendError) as caught:
        await sender.send(OutboundSms("main", "+14155550100", "+112345", "Hello", "r3"))
    assert (caught.value.temporary, caught.value.code) == (False, "21211")
    assert "+112345" in caught.value.message


async def test_empty_body_is_permanent_with_code(sender):
    with pytest.raises(SendError) as caught:
        await sender.send(OutboundSms("main", "+14155550100", "+14155550123", "", "r6"))
    assert (caught.value.temporary, caught.value.code) == (False, "21602")


async def test_fake_waits_end_with_a_clear_timeout(twilio_api):
    with pytest.raises(TimeoutError, match="got 0 of 1 requests"):
        await twilio_api.wait_for_requests(1, timeout=0.05)


async def test_rejection_is_permanent(sender, twilio_api):
    twilio_api.reject_next(1)
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert (caught.value.temporary, caught.value.code) == (False, "21610")
    assert (await sender.send(SMS)).provider_ids


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_throttling_are_temporary(sender, twilio_api, status):
    twilio_api.fail_next(1, status=status)
    with pytest.raises(SendError) as caught:
        await sender.send(SMS)
    assert caught.value.temporary
    assert caught.value.code in {"20500", "20429"}
    assert (await sender.send(SMS)).provider_ids
    assert len(await twilio_api.wait_for_requests(2)) == 2


async def test_wrong_token_is_permanent(twilio_api):
    sender = TwilioSender(twilio_api.account_sid, "wrong", api_base=twilio_api.base_url)
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert (caught.value.temporary, caught.value.code, caught.value.message) == (False, "20003", "Authenticate")


async def test_connection_refused_is_temporary(closed_port):
    sender = TwilioSender("AC" + "0" * 32, "t", api_base=f"http://127.0.0.1:{closed_port}")
    try:
        with pytest.raises(SendError, match="cannot reach") as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert caught.value.temporary


async def test_timeout_is_temporary(serve):
    never = asyncio.Event()

    async def hang(request):
        await never.wait()

    url = await serve(hang)
    sender = TwilioSender("AC" + "0" * 32, "t", api_base=url.removesuffix("/hook") + "/x", timeout=0.2)
    sender.url = url
    try:
        with pytest.raises(SendError, match="no answer") as caught:
            await sender.send(SMS)
    finally:
        never.set()  # let the server's handler end, so its shutdown does not wait for it
        await sender.close()
    assert caught.value.temporary


async def test_non_json_error_is_classified_by_status(serve):
    async def gateway_error(request):
        return web.Response(status=502, text="<html>Bad Gateway</html>")

    url = await serve(gateway_error)
    sender = TwilioSender("AC" + "0" * 32, "t")
    sender.url = url
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(SMS)
    finally:
        await sender.close()
    assert (caught.value.temporary, caught.value.code) == (True, None)
    assert "502" in caught.value.message


async def test_close_before_use_and_twice(twilio_api):
    sender = TwilioSender(twilio_api.account_sid, twilio_api.auth_token, api_base=twilio_api.base_url)
    await sender.close()
    await sender.close()


async def test_status_callbacks_reach_the_webhook_signed(sender, twilio_api, serve):
    reports, received = [], asyncio.Event()
    hook = TwilioWebhook("main", twilio_api.auth_token, account_sid=twilio_api.account_sid)

    async def callback(request):
        reports.append(status(hook, str(request.url), await request.read(), request.headers))
        received.set()
        return web.Response(status=hook.reply.status, body=hook.reply.body, content_type=hook.reply.content_type)

    url = await serve(callback)
    result = await sender.send(OutboundSms("main", "+14155550100", "+14155550123", "Hi", "r4", status_callback=url))
    (sid,) = result.provider_ids
    assert await twilio_api.send_status(sid, "delivered") == 200
    assert await twilio_api.send_status(sid, "undelivered", error_code=30003) == 200
    await asyncio.wait_for(received.wait(), timeout=5)
    assert [(r.provider_id, r.status, r.error) for r in reports] == [(sid, DELIVERED, None), (sid, UNDELIVERED, "30003")]


async def test_status_callback_with_wrong_token_is_refused(sender, twilio_api, serve):
    hook = TwilioWebhook("main", "not-the-token")

    async def callback(request):
        try:
            status(hook, str(request.url), await request.read(), request.headers)
        except Exception as err:  # the HTTP answer is what this test checks
            return web.Response(status=getattr(err, "status", 500), text=str(err))
        return web.Response(status=200)

    url = await serve(callback)
    result = await sender.send(OutboundSms("main", "+14155550100", "+14155550123", "Hi", "r5", status_callback=url))
    assert await twilio_api.send_status(result.provider_ids[0], "delivered") == 403


async def test_a_connector_messaging_service_sends_from_the_agents_number_with_its_media(twilio_api):
    service = "MG" + "e" * 32
    sender = TwilioSender(twilio_api.account_sid, twilio_api.auth_token, api_base=twilio_api.base_url,
                          messaging_service_sid=service)
    try:
        sms = OutboundSms("main", "+14155550100", "+14155550123", "a photo", "r9",
                          media=("https://m.example/a.jpg", "https://m.example/b.png"))
        assert twilio_form(sms, service) == [
            ("To", "+14155550123"), ("From", "+14155550100"), ("MessagingServiceSid", service), ("Body", "a photo"),
            ("MediaUrl", "https://m.example/a.jpg"), ("MediaUrl", "https://m.example/b.png")]
        assert (await sender.send(sms)).provider_ids
        [request] = await twilio_api.wait_for_requests(1)
        assert (request["From"], request["MessagingServiceSid"]) == ("+14155550100", service)
    finally:
        await sender.close()
