"""The SMS APIs each connector speaks: its webhook parser, where its statuses are posted, its sender.

(One module per provider under gateway/providers/ and one table of them is the next step; until
then this is the only place in chat/ that names a provider.)
"""
from __future__ import annotations

from chat.config import Connector, GenericConnector, LoopbackConnector, TwilioConnector
from chat.connectors.loopback import LoopbackSender
from gateway import GenericSender, GenericWebhook, Sender, TwilioSender, TwilioWebhook

Parser = TwilioWebhook | GenericWebhook


def webhook_parser(conn: Connector) -> Parser | None:
    """The connector's signature-checking webhook parser (None: it takes no webhooks)."""
    if isinstance(conn, TwilioConnector):
        return TwilioWebhook(conn.name, conn.auth_token.get_secret_value(), account_sid=conn.account_sid)
    if isinstance(conn, (GenericConnector, LoopbackConnector)):
        return GenericWebhook(conn.name, conn.secret.get_secret_value())
    return None


def status_callback(public_url: str, conn: Connector) -> str | None:
    """Where the connector's provider should post delivery statuses (None: it posts none)."""
    kind = {TwilioConnector: "twilio", GenericConnector: "generic"}.get(type(conn))
    return f"{public_url.rstrip('/')}/webhooks/{kind}/{conn.name}/status" if kind else None


def http_sender(conn: Connector, report) -> Sender | None:
    """The connector's sender if it is an SMS API (None for SMPP); `report` takes the loopback's statuses."""
    if isinstance(conn, TwilioConnector):
        return TwilioSender(conn.account_sid, conn.auth_token.get_secret_value(), api_base=conn.api_base)
    if isinstance(conn, GenericConnector):
        return GenericSender(conn.send_url, conn.secret.get_secret_value())
    if isinstance(conn, LoopbackConnector):
        return LoopbackSender(conn.name, report)
    return None
