"""The loopback: a provider for the demo and for trying didchat with no account.

Inbound comes as signed generic webhooks at /webhooks/generic/{connector} (`didchat simulate sms`);
outbound is logged, taken at once, and reported delivered a moment later through the same status
path as a provider's (SenderContext.report).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import Field, SecretStr

from gateway.messages import DELIVERED, SENT, OutboundSms, SendResult, StatusReport
from gateway.providers.base import Provider, SenderContext, Settings, Supports
from gateway.providers.generic import GenericWebhook, simulated


class LoopbackSettings(Settings):
    """For the demo and trials: inbound via signed generic webhooks, outbound 'delivered' locally."""

    type: Literal["loopback"]
    secret: SecretStr = Field(min_length=16)


class LoopbackSender:
    def __init__(self, name: str, report: Callable[[StatusReport], Awaitable[None]], delay: float = 1.0):
        self.name = name
        self.report = report
        self.delay = delay
        self._tasks: set[asyncio.Task] = set()
        import structlog  # here: `didchat simulate sms` imports this module and must not wait for structlog

        self._log = structlog.get_logger()

    async def send(self, sms: OutboundSms) -> SendResult:
        """Take the message and report it delivered after `delay` seconds."""
        provider_id = f"loop-{sms.reference}"
        self._log.info("loopback.sms", sender=sms.sender, recipient=sms.recipient, text=sms.text, media=len(sms.media))
        task = asyncio.create_task(self._deliver(provider_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return SendResult((provider_id,), SENT)

    async def _deliver(self, provider_id: str) -> None:
        await asyncio.sleep(self.delay)
        await self.report(StatusReport(self.name, provider_id, DELIVERED))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _sender(conn: LoopbackSettings, context: SenderContext) -> LoopbackSender:
    return LoopbackSender(conn.name, context.report)


PROVIDER = Provider(
    type="loopback",
    title="Loopback (demo)",
    settings=LoopbackSettings,
    webhook=lambda conn: GenericWebhook(conn.name, conn.secret.get_secret_value()),
    sender=_sender,
    supports=Supports(mms_in=True, mms_out=True, signed="X-Didchat-Signature (HMAC-SHA256 of the body)"),  # takes attachments
    path="generic",
    status_callbacks=False,
    simulate=lambda conn, url, sender, to, text, mid: simulated(
        f"/webhooks/generic/{conn.name}", conn.secret.get_secret_value(), sender, to, text, mid),
)
