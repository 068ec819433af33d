"""Sending through didchat's generic JSON HTTP format.

Rules:
- POST {"id": reference, "from", "to", "text", "status_url"?} as JSON, signed with
  X-Didchat-Signature exactly as GenericWebhook checks it (one signing function serves both).
- 2xx answers {"id": provider_id} (and optionally "status", one of gateway.messages.STATUSES).
- Error answers may carry {"error": "...", "code": ...}.
"""
from __future__ import annotations

import json

from gateway.messages import QUEUED, STATUSES, OutboundSms, SendError, SendResult
from gateway.senders.http import Answer, HttpClient
from gateway.webhooks import DIDCHAT_SIGNATURE_HEADER, didchat_signature


class GenericSender:
    """Sends SMS to an HTTP endpoint speaking the generic JSON format."""

    def __init__(self, url: str, secret: str, timeout: float = 10.0):
        self.url = url
        self._secret = secret
        self._http = HttpClient(timeout)

    async def send(self, sms: OutboundSms) -> SendResult:
        """POST one message and read the provider's id for it."""
        body = generic_body(sms)
        headers = {
            "Content-Type": "application/json",
            DIDCHAT_SIGNATURE_HEADER: didchat_signature(self._secret, body),
        }
        answer = await self._http.post(self.url, data=body, headers=headers)
        if not answer.ok:
            raise generic_error(answer)
        return _result(answer)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()


def generic_body(sms: OutboundSms) -> bytes:
    """Return the JSON body that asks the endpoint to send `sms`."""
    payload = {"id": sms.reference, "from": sms.sender, "to": sms.recipient, "text": sms.text}
    if sms.status_callback:
        payload["status_url"] = sms.status_callback
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def generic_error(answer: Answer) -> SendError:
    """Turn an error answer into a SendError, keeping the endpoint's error and code."""
    code = answer.field("code")
    message = answer.field("error") or f"endpoint answered HTTP {answer.status}"
    return SendError(str(message), temporary=answer.temporary, code=None if code is None else str(code))


def _result(answer: Answer) -> SendResult:
    """Read {"id", "status"?} from a 2xx answer."""
    provider_id = answer.field("id")
    if isinstance(provider_id, int) and not isinstance(provider_id, bool):
        provider_id = str(provider_id)
    if not isinstance(provider_id, str) or not provider_id:
        raise SendError(f"endpoint answered {answer.status} without an id", temporary=False)
    status = answer.field("status")
    return SendResult(provider_ids=(provider_id,), status=status if status in STATUSES else QUEUED)
