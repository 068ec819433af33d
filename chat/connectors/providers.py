"""The SMS APIs each connector speaks, looked up in gateway.providers.PROVIDERS by the connector's type:
its webhook reader, where its statuses are posted, its sender. Nothing here names a provider."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway import PROVIDERS, Sender, SenderContext, StatusReport, Webhook


@dataclass(frozen=True)
class Hook:
    """A connector's webhook reader, and the URL segment its provider's webhooks come to."""

    path: str
    webhook: Webhook


def webhook_parser(conn) -> Hook | None:
    """The connector's signature-checking webhook reader (None: it takes no webhooks, as SMPP)."""
    provider = PROVIDERS.get(conn.type)
    if provider is None or provider.webhook is None:
        return None
    return Hook(provider.url_path, provider.webhook(conn))


def status_callback(public_url: str, conn) -> str | None:
    """Where the connector's provider should post delivery statuses (None: it posts none)."""
    provider = PROVIDERS.get(conn.type)
    return provider.status_url(public_url, conn.name) if provider is not None else None


def http_sender(conn, report: Callable[[StatusReport], Awaitable[None]]) -> Sender | None:
    """The connector's sender if it is an SMS API (None for SMPP); `report` takes statuses a sender learns itself."""
    provider = PROVIDERS.get(conn.type)
    return provider.sender(conn, SenderContext(report)) if provider is not None else None
