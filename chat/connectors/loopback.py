"""The loopback connector: a provider for the demo and for trying didchat with no account.

Inbound comes as signed generic webhooks (`didchat simulate sms`); outbound is logged, taken
at once, and reported delivered a moment later through the same status path as a provider's.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from gateway import OutboundSms, SendResult, StatusReport
from gateway.messages import DELIVERED, SENT

log = structlog.get_logger()


class LoopbackSender:
    def __init__(self, name: str, report: Callable[[StatusReport], Awaitable[None]], delay: float = 1.0):
        self.name = name
        self.report = report
        self.delay = delay
        self._tasks: set[asyncio.Task] = set()

    async def send(self, sms: OutboundSms) -> SendResult:
        """Take the message and report it delivered after `delay` seconds."""
        provider_id = f"loop-{sms.reference}"
        log.info("loopback.sms", sender=sms.sender, recipient=sms.recipient, text=sms.text)
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
