"""Delivery receipts: recognise them, read them, map their state onto our message statuses.

Rules:
- A deliver_sm is a receipt when its esm_class message type (bits 2..5) is an SMSC delivery
  receipt (0x04), an SME acknowledgement (0x08, 0x10) or an intermediate notification (0x20).
- The text follows SMPP 3.4 appendix B (`id:… sub:… dlvrd:… submit date:… done date:… stat:…
  err:… text:…`), read leniently: any case, extra spaces, fields missing, `text:` last and taken
  whole. The TLVs `receipted_message_id` and `message_state` win over the text when present.
- Dates are YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss, in the SMSC's (unstated) time zone: they
  come back naive. A date that cannot be read is None, not an error.
- Message ids may be hex on one side and decimal on the other: `canonical_id` gives one form.
- Pure functions: no I/O, no state.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.messages import DELIVERED, FAILED, SENT, UNDELIVERED

_MESSAGE_TYPE_MASK = 0x3C
_RECEIPT_TYPES = frozenset({0x04, 0x08, 0x10, 0x20})

# message_state TLV (SMPP 3.4 section 5.2.28) -> stat as receipts write it
MESSAGE_STATES = {
    1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED",
    5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD",
}
# long spellings some SMSCs write -> the short form
_STAT_ALIASES = {
    "DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "UNDELIVERED": "UNDELIV",
    "ACCEPTED": "ACCEPTD", "REJECTED": "REJECTD",
}
_STATUSES = {
    "DELIVRD": DELIVERED, "ACCEPTD": SENT, "ENROUTE": SENT, "UNKNOWN": SENT,
    "UNDELIV": UNDELIVERED, "EXPIRED": FAILED, "REJECTD": FAILED, "DELETED": FAILED,
}

_FIELD = re.compile(
    r"(?<![A-Za-z0-9_])(id|sub|dlvrd|submit[\s_]*date|done[\s_]*date|stat|err|text)\s*:",
    re.IGNORECASE,
)
_DATE_FORMATS = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S", 14: "%Y%m%d%H%M%S"}
_ID_BASES = {"hex": (16, re.compile(r"[0-9A-Fa-f]+")), "dec": (10, re.compile(r"[0-9]+"))}
ID_BASES = ("hex", "dec", "str")


@dataclass(frozen=True)
class Receipt:
    """What a delivery receipt says about one message (one part of a long one)."""

    message_id: str
    stat: str  # DELIVRD, UNDELIV, EXPIRED, REJECTD, ACCEPTD, UNKNOWN, ENROUTE, DELETED, or as sent
    err: str | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    sub: str | None = None
    dlvrd: str | None = None
    text: str | None = None


class BadReceipt(ValueError):
    """A receipt without a message id or a state."""


def is_receipt(esm_class: int) -> bool:
    """Say whether a deliver_sm's esm_class marks a receipt rather than a message."""
    return (esm_class & _MESSAGE_TYPE_MASK) in _RECEIPT_TYPES


def parse_receipt(text: str, tlvs: Mapping[str, object]) -> Receipt:
    """Read a receipt from its text and TLVs; BadReceipt when it has no id or no state."""
    fields = _fields(text)
    message_id = _tlv_text(tlvs.get("receipted_message_id")) or fields.get("id")
    if not message_id:
        raise BadReceipt(f"delivery receipt without a message id: {text[:80]!r}")
    state = _tlv_int(tlvs.get("message_state"))
    stat = (MESSAGE_STATES.get(state) if state is not None else None) or _stat(fields.get("stat"))
    if not stat:
        raise BadReceipt(f"delivery receipt without a state: {text[:80]!r}")
    return Receipt(
        message_id=message_id,
        stat=stat,
        err=fields.get("err"),
        submit_date=_date(fields.get("submit_date")),
        done_date=_date(fields.get("done_date")),
        sub=fields.get("sub"),
        dlvrd=fields.get("dlvrd"),
        text=fields.get("text"),
    )


def _fields(text: str) -> dict[str, str]:
    """Return the receipt's fields by name; `text:` takes the rest of the string."""
    found: dict[str, str] = {}
    matches = list(_FIELD.finditer(text))
    for index, match in enumerate(matches):
        name = re.sub(r"[\s_]+", "_", match.group(1).lower())
        if name == "text":
            found[name] = text[match.end():].strip(" \x00")
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = text[match.end():end].split()
        if value:
            found.setdefault(name, value[0].strip("\x00"))
    return found


def _tlv_text(value: object) -> str | None:
    """Return a C-string TLV as text, NULs and spaces stripped; None when absent or empty."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str):
        return None
    return value.strip(" \x00") or None


def _tlv_int(value: object) -> int | None:
    if isinstance(value, (bytes, bytearray)) and len(value) == 1:
        return value[0]
    return value if isinstance(value, int) else None


def _stat(value: str | None) -> str | None:
    """Return a stat in its short upper-case form."""
    if not value:
        return None
    upper = value.upper()
    return _STAT_ALIASES.get(upper, upper)


def _date(value: str | None) -> datetime | None:
    """Read a receipt date; None when absent or unreadable."""
    if not value or not value.isdigit() or len(value) not in _DATE_FORMATS:
        return None
    try:
        return datetime.strptime(value, _DATE_FORMATS[len(value)])
    except ValueError:
        return None


def receipt_status(stat: str) -> str:
    """Map a receipt's stat onto gateway.messages statuses; a stat we don't know is not final."""
    return _STATUSES.get(_stat(stat) or "", SENT)


def format_receipt(receipt: Receipt, *, seconds: bool = False) -> str:
    """Write a receipt in the appendix B format (fields that are None are left out)."""
    date_format = _DATE_FORMATS[12 if seconds else 10]
    values = [
        ("id", receipt.message_id), ("sub", receipt.sub), ("dlvrd", receipt.dlvrd),
        ("submit date", receipt.submit_date and receipt.submit_date.strftime(date_format)),
        ("done date", receipt.done_date and receipt.done_date.strftime(date_format)),
        ("stat", receipt.stat), ("err", receipt.err), ("text", receipt.text),
    ]
    return " ".join(f"{name}:{value}" for name, value in values if value is not None)


def canonical_id(message_id: str, base: str) -> str:
    """Return one form of a message id so submit_sm_resp and receipt ids compare equal."""
    if base not in ID_BASES:
        raise ValueError(f"message id base must be one of {', '.join(ID_BASES)}, not {base!r}")
    value = message_id.strip(" \x00")
    if base == "str":
        if not value:
            raise ValueError("empty message id")
        return value
    radix, pattern = _ID_BASES[base]
    if not pattern.fullmatch(value):
        raise ValueError(f"message id {message_id!r} is not a {base} number")
    return str(int(value, radix))
