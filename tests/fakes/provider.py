"""What every fake SMS API offers the tests, so one end-to-end test runs against each provider.

A fake speaks its provider's documented wire format, never a shortcut through our code: its REST API
answers as the provider's does (status codes, JSON or form bodies, error shapes), and the webhooks it
builds are signed the way the provider documents, by code in the fake (or the provider's own SDK),
not by gateway.providers. It listens on 127.0.0.1 (port 0) and sleeps nowhere.

Each fake module (tests/fakes/NAME_api.py) has a class implementing `FakeProvider`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web


@dataclass(frozen=True)
class Sent:
    """One send request the fake received, as the provider reads it."""

    sender: str  # E.164 with its "+" (normalised from the provider's own spelling)
    recipient: str
    text: str
    media: tuple[str, ...] = ()
    status_url: str | None = None  # where the fake would post this message's statuses, if the request said
    provider_id: str = ""  # the id the fake answered with
    raw: Any = None  # the request's body as the provider reads it (form fields or JSON)
    at: float = 0.0  # time.monotonic() when it arrived (pacing tests)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Webhook:
    """A signed webhook the provider would send: where (below the connector's webhook URL), body and headers."""

    body: bytes
    headers: dict[str, str]
    route: str = "message"  # "message": POST to /webhooks/{type}/{connector}; "status": to .../status
    method: str = "POST"
    query: str = ""  # appended to the URL after "?" (providers that sign GET-style query parameters)


class FakeProvider(Protocol):
    type: str  # the connector type ("vonage", ...)
    base_url: str  # where the fake's REST API listens, set by start()
    sent: list[Sent]  # every send request that reached the fake, in order

    async def start(self) -> FakeProvider: ...

    async def stop(self) -> None: ...

    def connector_yaml(self, name: str, numbers: list[str]) -> str:
        """The connector's entry for didchat's configuration file (a YAML mapping, one line per key,
        indented by four spaces and starting with "  - type: ..."), pointing the sender at `base_url`."""
        ...

    def inbound(self, url: str, sender: str, to: str, text: str, message_id: str,
                media: list[tuple[str, str]] | None = None) -> list[Webhook]:
        """The signed webhook(s) the provider posts for one incoming message to `url` (the connector's message
        URL); `media` as (url, content type) pairs; more than one webhook when the provider sends parts."""
        ...

    def delivered(self, url: str, sent: Sent) -> Webhook:
        """The signed callback saying `sent` was delivered, as the provider posts it to `url` (the status URL
        the message was sent with, or the connector's message URL for providers with one webhook URL)."""
        ...

    def forged(self, webhook: Webhook) -> Webhook:
        """The same webhook with a signature that does not verify (wrong key)."""
        ...

    def refuse_next_as_opted_out(self) -> None:
        """Answer the next send as the provider answers a send to a recipient who opted out with it."""
        ...

    def media_url(self, name: str) -> str:
        """A media URL the fake serves (with the provider's authentication) for inbound MMS."""
        ...


class Served:
    """A fake's aiohttp server on 127.0.0.1 (port 0 picks a free one): `routes` adds its routes; `base_url` once
    started."""

    base_url = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0):
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=2)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
