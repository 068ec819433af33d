"""GenericSender against a small local endpoint that checks its signature with GenericWebhook."""
import json

import pytest
from aiohttp import web

from gateway.fields import SignatureError
from gateway.messages import SENT, OutboundSms, SendError
from gateway.providers.generic import GenericSender, GenericWebhook

SECRET = "generic-secret"
SMS = OutboundSms("generic", "+14155550100", "+14155550123", "Grüße €", "ref-1", status_callback="http://x/status")


def endpoint(status=200, payload=None, received=None):
    """An endpoint that verifies the signature, records the JSON and answers as told."""
    checker = GenericWebhook("peer", SECRET)

    async def handle(request):
        try:
            data = checker._fields(await request.read(), request.headers).data
        except SignatureError as err:
            return web.json_response({"error": err.message, "code": "sig"}, status=err.status)
        if received is not None:
            received.append(data)
        return web.json_response(payload if payload is not None else {"id": "p-1"}, status=status)

    return handle


async def send_to(url, sms=SMS, secret=SECRET, **kwargs):
    sender = GenericSender(url, secret, **kwargs)
    try:
        return await sender.send(sms)
    finally:
        await sender.close()


async def test_success_is_signed_json(serve):
    received = []
    result = await send_to(await serve(endpoint(received=received)))
    assert result.provider_ids == ("p-1",)
    assert received == [{"id": "ref-1", "from": "+14155550100", "to": "+14155550123", "text": "Grüße €",
                         "status_url": "http://x/status"}]


async def test_status_url_is_optional_and_status_is_read(serve):
    received = []
    sms = OutboundSms("generic", "+14155550100", "+14155550123", "Hi", "ref-2")
    answer = {"id": 7, "status": "sent"}
    result = await send_to(await serve(endpoint(202, answer, received)), sms=sms)
    assert (result.provider_ids, result.status) == (("7",), SENT)
    assert "status_url" not in received[0]


async def test_wrong_secret_is_a_permanent_error_with_code(serve):
    with pytest.raises(SendError) as caught:
        await send_to(await serve(endpoint()), secret="wrong")
    assert (caught.value.temporary, caught.value.code) == (False, "sig")
    assert "X-Didchat-Signature" in caught.value.message


async def test_client_error_keeps_error_and_code(serve):
    with pytest.raises(SendError) as caught:
        await send_to(await serve(endpoint(400, {"error": "recipient opted out", "code": 21610})))
    assert (caught.value.temporary, caught.value.code, caught.value.message) == (False, "21610", "recipient opted out")


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_temporary(serve, status):
    with pytest.raises(SendError) as caught:
        await send_to(await serve(endpoint(status, {})))
    assert caught.value.temporary
    assert str(status) in caught.value.message


async def test_success_without_id_is_permanent(serve):
    with pytest.raises(SendError, match="without an id") as caught:
        await send_to(await serve(endpoint(200, {"ok": True})))
    assert not caught.value.temporary


async def test_redirect_is_not_followed(serve):
    async def moved(request):
        raise web.HTTPFound("http://127.0.0.1:1/elsewhere")

    with pytest.raises(SendError) as caught:
        await send_to(await serve(moved))
    assert not caught.value.temporary


async def test_connection_refused_is_temporary(closed_port):
    with pytest.raises(SendError) as caught:
        await send_to(f"http://127.0.0.1:{closed_port}/hook")
    assert caught.value.temporary


async def test_body_is_utf8_json(serve):
    bodies = []

    async def raw(request):
        bodies.append(await request.read())
        return web.json_response({"id": "p"})

    await send_to(await serve(raw))
    assert json.loads(bodies[0].decode("utf-8"))["text"] == "Grüße €"
