"""The SMS APIs didchat speaks, one module each (gateway/providers/NAME.py, its shape in .base).

PROVIDERS is the only list of them: the configuration's connector types, the webhook routes, the
senders, the admin pages' forms and the docs' table all come from it. A new provider is one module,
its tests and a row here.
"""
from __future__ import annotations

from gateway.providers import bandwidth, generic, loopback, plivo, telnyx, twilio, vonage
from gateway.providers.base import (
    EMPTY_OK,
    JSON_OK,
    Event,
    Part,
    Provider,
    Route,
    Sender,
    SenderContext,
    Settings,
    Simulated,
    Supports,
    Webhook,
    WebhookReply,
    WebhookRequest,
)

PROVIDERS: dict[str, Provider] = {p.type: p for p in (
    twilio.PROVIDER,
    vonage.PROVIDER,
    telnyx.PROVIDER,
    plivo.PROVIDER,
    bandwidth.PROVIDER,
    generic.PROVIDER,
    loopback.PROVIDER,
)}

__all__ = [
    "EMPTY_OK", "JSON_OK", "PROVIDERS", "Event", "Part", "Provider", "Route", "Sender", "SenderContext", "Settings",
    "Simulated", "Supports", "Webhook", "WebhookReply", "WebhookRequest",
]
