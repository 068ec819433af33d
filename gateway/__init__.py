"""didchat's SMS edge, a library: it knows no database and no agents, and imports nothing else of ours.

Inbound: webhooks turn signed provider requests into InboundSms / StatusReport values.
Outbound: senders turn OutboundSms into a SendResult or a SendError (temporary or not).
Around both: phone number normalisation and SMS text rules.
"""
from gateway.messages import (
    DELIVERED,
    FAILED,
    FINAL_STATUSES,
    QUEUED,
    SENT,
    STATUSES,
    UNDELIVERED,
    InboundSms,
    Media,
    OutboundSms,
    SendError,
    SendResult,
    StatusReport,
)
from gateway.numbers import InvalidNumber, country_of, normalize_number, normalize_sender
from gateway.text import GSM7, UCS2, count_segments, count_units, encoding_for, storable
from gateway.webhooks import (
    GenericWebhook,
    MalformedWebhook,
    SignatureError,
    TwilioRouting,
    TwilioWebhook,
    WebhookError,
    WebhookReply,
    didchat_signature,
    twilio_routing,
    twilio_signature,
)

__all__ = [
    "DELIVERED",
    "FAILED",
    "FINAL_STATUSES",
    "GSM7",
    "QUEUED",
    "SENT",
    "STATUSES",
    "UCS2",
    "UNDELIVERED",
    "GenericSender",
    "GenericWebhook",
    "InboundSms",
    "InvalidNumber",
    "MalformedWebhook",
    "Media",
    "OutboundSms",
    "SendError",
    "SendResult",
    "Sender",
    "SignatureError",
    "StatusReport",
    "TwilioRouting",
    "TwilioSender",
    "TwilioWebhook",
    "WebhookError",
    "WebhookReply",
    "count_segments",
    "count_units",
    "country_of",
    "didchat_signature",
    "encoding_for",
    "storable",
    "normalize_number",
    "normalize_sender",
    "twilio_routing",
    "twilio_signature",
]
SENDERS = ("GenericSender", "Sender", "TwilioSender")


def __getattr__(name: str):
    """The senders, imported on first use: they load aiohttp, which `didchat simulate sms` must not wait for."""
    if name in SENDERS:
        from gateway import senders
        return getattr(senders, name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
