"""Sending through Twilio's Messages REST API (2010-04-01).

Rules:
- POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded, HTTP basic auth.
- 201 carries the message resource: its `sid` is the provider id, its `status` mapped as the
  status callbacks are.
- Twilio's errors are JSON {"code", "message", "more_info", "status"}; the code is kept.
- A sender that is a Messaging Service SID (MG...) goes as MessagingServiceSid, not From.
"""
from __future__ import annotations

import aiohttp

from gateway.messages import QUEUED, OutboundSms, SendError, SendResult
from gateway.senders.http import Answer, HttpClient
from gateway.webhooks import TWILIO_STATUSES


class TwilioSender:
    """Sends SMS with one Twilio account."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base: str = "https://api.twilio.com",
        timeout: float = 10.0,
    ):
        self.url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._http = HttpClient(timeout, {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)})

    async def send(self, sms: OutboundSms) -> SendResult:
        """Create one Message resource."""
        answer = await self._http.post(self.url, data=twilio_form(sms))
        if not answer.ok:
            raise twilio_error(answer)
        sid = answer.field("sid")
        if not isinstance(sid, str) or not sid:
            raise SendError(f"Twilio answered {answer.status} without a message sid", temporary=False)
        return SendResult(provider_ids=(sid,), status=TWILIO_STATUSES.get(str(answer.field("status")), QUEUED))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()


def twilio_form(sms: OutboundSms) -> dict[str, str]:
    """Return the form fields that create `sms` as a Twilio Message."""
    sender_field = "MessagingServiceSid" if _is_messaging_service(sms.sender) else "From"
    form = {"To": sms.recipient, sender_field: sms.sender, "Body": sms.text}
    if sms.status_callback:
        form["StatusCallback"] = sms.status_callback
    return form


def twilio_error(answer: Answer) -> SendError:
    """Turn a Twilio error answer into a SendError keeping Twilio's code."""
    code = answer.field("code")
    message = answer.field("message") or f"Twilio answered HTTP {answer.status}"
    return SendError(str(message), temporary=answer.temporary, code=None if code is None else str(code))


def _is_messaging_service(sender: str) -> bool:
    """Whether a sender is a Messaging Service SID rather than a number."""
    return sender.startswith("MG") and len(sender) == 34
