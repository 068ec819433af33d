"""The SMS APIs each connector speaks: its webhook parser, where its statuses are posted, its sender.

(One module per provider under gateway/providers/ and one table of them is the next step; until
then this is the only place in chat/ that names a provider.)
"""
from __future__ import annotations

from chat.config import Config, GenericConnector, LoopbackConnector, TwilioConnector
from chat.connectors.loopback import LoopbackSender
from gateway import GenericSender, GenericWebhook, Sender, TwilioSender, TwilioWebhook


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
