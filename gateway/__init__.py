"""didchat's SMS edge, a library: it knows no database and no agents, and imports nothing else of ours.

Providers (gateway.providers, one module per SMS API, listed in PROVIDERS): signed webhooks in as
InboundSms / Part / StatusReport values, OutboundSms out as a SendResult or a SendError.
SMPP (gateway.smpp): an ESME's binds to an SMSC. Around both: phone numbers and SMS text rules.
"""
from gateway.fields import MalformedWebhook, SignatureError, UnsupportedMediaType, WebhookError
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
from gateway.numbers import InvalidNumber, country_of, national, normalize_number, normalize_sender
from gateway.providers import PROVIDERS, Part, Provider, Sender, SenderContext, Settings, Webhook, WebhookRequest
from gateway.text import GSM7, UCS2, count_segments, count_units, encoding_for, storable

__all__ = [
    "DELIVERED",
    "FAILED",
    "FINAL_STATUSES",
    "GSM7",
    "PROVIDERS",
    "QUEUED",
    "SENT",
    "STATUSES",
    "UCS2",
    "UNDELIVERED",
    "InboundSms",
    "InvalidNumber",
    "MalformedWebhook",
    "Media",
    "OutboundSms",
    "Part",
    "Provider",
    "SendError",
    "SendResult",
    "Sender",
    "SenderContext",
    "Settings",
    "SignatureError",
    "StatusReport",
    "UnsupportedMediaType",
    "Webhook",
    "WebhookError",
    "WebhookRequest",
    "count_segments",
    "count_units",
    "country_of",
    "national",
    "encoding_for",
    "normalize_number",
    "normalize_sender",
    "storable",
]
