"""Reading one webhook with a provider's Webhook, as the chat's route does (gateway.providers.base)."""
from __future__ import annotations

from gateway.providers import WebhookRequest


def read(hook, route: str, url: str, body: bytes, headers):
    """The one event a webhook carried (the test fails if it carried another number)."""
    events = hook.events(WebhookRequest(url, body, headers), route)
    assert len(events) == 1, events
    return events[0]


def message(hook, url: str, body: bytes, headers):
    return read(hook, "message", url, body, headers)


def status(hook, url: str, body: bytes, headers):
    return read(hook, "status", url, body, headers)
