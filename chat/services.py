"""The running app's parts, built once at start-up and shared through one AppKey."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from chat.agents.auth import Tokens
from chat.config import Config, GenericConnector, LoopbackConnector, TwilioConnector
from chat.connectors.loopback import LoopbackSender
from chat.domain.directory import Directory
from chat.store import Database
from chat.store.commit import GroupCommit
from chat.workers.hub import Hub
from chat.workers.presence import Presence
from chat.workers.routing import Router
from gateway import GenericSender, GenericWebhook, Sender, TwilioSender, TwilioWebhook

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Services:
    config: Config
    db: Database
    directory: Directory
    tokens: Tokens
    presence: Presence
    commit: GroupCommit
    hub: Hub
    router: Router
    webhooks: dict[str, TwilioWebhook | GenericWebhook]
    outbox: Any = None  # chat.workers.outbox.Outbox, set once senders exist
    automation: Any = None  # chat.workers.automation.Automation
    crm: Any = None  # chat.workers.crm.CrmOutbox
    http: Any = None  # one aiohttp.ClientSession for scenario calls and CRM activities
    vendor_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("DIDCHAT_VENDOR_DIR", REPO / "node_modules" / "socket.io-client" / "dist")))

    def public_url(self, path_qs: str) -> str:
        """The URL a provider called, as it saw it (behind a proxy: from `public_url`)."""
        return self.config.public_url.rstrip("/") + path_qs


SERVICES = web.AppKey("services", Services)


def webhook_parsers(config: Config) -> dict[str, TwilioWebhook | GenericWebhook]:
    """One signature-checking parser per connector."""
    parsers: dict[str, TwilioWebhook | GenericWebhook] = {}
    for conn in config.connectors:
        if isinstance(conn, TwilioConnector):
            parsers[conn.name] = TwilioWebhook(conn.name, conn.auth_token.get_secret_value(), account_sid=conn.account_sid)
        elif isinstance(conn, (GenericConnector, LoopbackConnector)):
            parsers[conn.name] = GenericWebhook(conn.name, conn.secret.get_secret_value())
    return parsers


def status_callbacks(config: Config) -> dict[str, str | None]:
    """Where each connector's provider should post delivery statuses."""
    base = config.public_url.rstrip("/")
    out: dict[str, str | None] = {}
    for conn in config.connectors:
        kind = {TwilioConnector: "twilio", GenericConnector: "generic"}.get(type(conn))
        out[conn.name] = f"{base}/webhooks/{kind}/{conn.name}/status" if kind else None
    return out


def build_senders(config: Config, report) -> dict[str, Sender]:
    """One outbound sender per connector; `report` takes the loopback's statuses."""
    senders: dict[str, Sender] = {}
    for conn in config.connectors:
        if isinstance(conn, TwilioConnector):
            senders[conn.name] = TwilioSender(conn.account_sid, conn.auth_token.get_secret_value(), api_base=conn.api_base)
        elif isinstance(conn, GenericConnector):
            senders[conn.name] = GenericSender(conn.send_url, conn.secret.get_secret_value())
        elif isinstance(conn, LoopbackConnector):
            senders[conn.name] = LoopbackSender(conn.name, report)
    return senders
