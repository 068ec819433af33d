"""Phone numbers at the gateway's edge.

Rules:
- Numbers we store and compare are E.164 (`+` and digits), checked against the numbering plan.
- `normalize_number` is strict: our own numbers and agent-entered recipients must be real E.164.
- A value holding what no store can hold (U+0000, lone surrogates: gateway.text.storable) is
  never a number: phonenumbers would quietly drop a trailing NUL, and a number must be exact.
- `normalize_sender` is lenient, for what a provider says a message came from: short codes
  (3-8 digits, no `+`) and alphanumeric sender ids are kept as given, because `phonenumbers`
  would turn "12345" into an invalid "+112345" and refuses letters.
"""
from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from gateway.text import storable

_SHORT_CODE = re.compile(r"\d{3,8}")
_ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 .&'_\-]{1,11}")
_DIGITS = re.compile(r"\d+")

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: (
        "no valid country code; write it as +<country code><number> or configure a default region"
    ),
    NumberParseException.NOT_A_NUMBER: "it does not look like a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length for its country",
}


class InvalidNumber(ValueError):
    """A value that is not an acceptable phone number; the message names it and says why."""

    def __init__(self, raw: str, reason: str):
        super().__init__(f"{raw!r} is not a valid phone number ({reason})")
        self.raw = raw
        self.reason = reason


@functools.lru_cache(maxsize=65536)  # pure, and the same numbers come back all day
def normalize_number(raw: str, default_region: str | None = None) -> str:
    """Return `raw` as a valid E.164 number, or raise InvalidNumber."""
    text = raw.strip()
    if not text:
        raise InvalidNumber(raw, "it is empty")
    if storable(text)[1]:
        raise InvalidNumber(raw, "it holds U+0000 or a lone surrogate")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except NumberParseException as err:
        raise InvalidNumber(raw, _PARSE_REASONS.get(err.error_type, str(err))) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(raw, _invalid_reason(parsed))
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def country_of(number: str) -> str | None:
    """The ISO 3166 region (e.g. "GB") an E.164 number belongs to, or None (not a number, or none known)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or None
    except NumberParseException:
        return None


@functools.lru_cache(maxsize=65536)
def national(number: str) -> tuple[str, str | None]:
    """The number as its country writes it, and that country (ISO 3166), or the number as it is and None
    (a short code or sender id)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return number, None
    country = country_of(number) or phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL), None if country in (None, "ZZ", "001") else country


@functools.lru_cache(maxsize=65536)
def normalize_sender(raw: str, default_region: str | None = None) -> str:
    """Return a sender as E.164, or a short code / alphanumeric sender id kept as given."""
    text = raw.strip()
    if _SHORT_CODE.fullmatch(text) or _ALPHANUMERIC.fullmatch(text):
        return text
    try:
        return normalize_number(text, default_region)
    except InvalidNumber:
        international = _international(text)
        if international is None:
            raise
        return international


def _international(text: str) -> str | None:
    """Read bare digits as an international number without its '+' (SMPP TON 1, Vonage msisdn)."""
    if not _DIGITS.fullmatch(text):
        return None
    try:
        return normalize_number("+" + text)
    except InvalidNumber:
        return None


def _invalid_reason(parsed: phonenumbers.PhoneNumber) -> str:
    """Say why a parsed number is not valid."""
    result = phonenumbers.is_possible_number_with_reason(parsed)
    return _POSSIBLE_REASONS.get(result, "not a number in its country's numbering plan")


@functools.lru_cache(maxsize=4096)
def number_type(sender: str) -> str:
    """What kind of number a message is sent from, for pacing: "short_code" (3-8 digits, no +), "toll_free"
    (an E.164 toll-free number by the numbering plan), else "long_code" (alphanumeric ids included)."""
    if _SHORT_CODE.fullmatch(sender):
        return "short_code"
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(sender, None))
    except NumberParseException:
        return "long_code"
    return "toll_free" if kind == phonenumbers.PhoneNumberType.TOLL_FREE else "long_code"
