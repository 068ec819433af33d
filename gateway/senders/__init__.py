"""Outbound senders: one small interface, one module per provider.

Rules:
- A sender sends what it is given and says what happened: a SendResult, or a SendError whose
  `temporary` flag tells the caller (the outbox) whether to retry.
- Temporary: throttling (429), server errors (5xx), timeouts, connection failures.
  Permanent: every other refusal, with the provider's error code when it gives one.
- A timeout is temporary although the provider may have taken the message: the caller
  decides between a possible duplicate and a possible loss (the outbox retries).
"""
from __future__ import annotations

from typing import Protocol

from gateway.messages import OutboundSms, SendResult
from gateway.senders.generic import GenericSender
from gateway.senders.twilio import TwilioSender


class Sender(Protocol):
    """What the outbox needs of any connector's sender."""

    async def send(self, sms: OutboundSms) -> SendResult:
        """Hand one message to the provider."""
        ...

    async def close(self) -> None:
        """Release connections; the sender may not be used afterwards."""
        ...


__all__ = ["GenericSender", "Sender", "TwilioSender"]
