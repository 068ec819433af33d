"""SMPP addresses (address, TON, NPI) to and from the numbers we store.

Rules:
- TON 1 (international): E.164 with its `+`. Validity is not the SMSC's problem: digits that
  `gateway.numbers` thinks invalid are still kept as `+` and the digits, when there are 7 to 15.
- TON 2 (national) needs the connector's country (ISO region, e.g. "US"); without one it is an
  AddressError, because guessing a country would route a conversation to the wrong person.
  National digits the country's plan rejects (short codes among them) are kept as given.
- TON 5 (alphanumeric), TON 3 (network specific), TON 4 (subscriber), TON 6 (abbreviated) and
  short codes are kept as given.
- TON 0 (unknown): `+` and digits, or 10 or more digits, read as international; a leading 0
  (a trunk or international prefix, never a country code) reads as national when a country is
  set; anything else is kept as given.
- Outbound: E.164 goes as TON 1 / NPI 1 without its `+`; short codes as TON 3 / NPI 0 (as Kannel
  and providers' address tables do); other digits as TON 0 / NPI 1; sender ids as TON 5 / NPI 0.
- An address is refused (AddressError) only when it cannot be kept: empty, national without a
  country, or too long to send.
"""
from __future__ import annotations

import re

import phonenumbers

from gateway.numbers import InvalidNumber, normalize_number

TON_UNKNOWN, TON_INTERNATIONAL, TON_NATIONAL, TON_NETWORK_SPECIFIC = 0, 1, 2, 3
TON_SUBSCRIBER, TON_ALPHANUMERIC, TON_ABBREVIATED = 4, 5, 6
NPI_UNKNOWN, NPI_ISDN = 0, 1

_SHORT_CODE = re.compile(r"\d{3,8}")
_INTERNATIONAL = re.compile(r"\+?(\d{7,15})")
_E164 = re.compile(r"\+(\d{1,15})")
_MAX_SENDER_ID = 11  # characters an alphanumeric sender id may have
_MAX_ADDRESS = 20  # source_addr / destination_addr: 21 octets with the terminating NUL


class AddressError(ValueError):
    """An SMPP address that cannot be turned into a number we store, or sent as one."""


def normalize_address(addr: str, ton: int, npi: int, country: str | None = None) -> str:
    """Return an SMPP address as we store it: E.164, or a short code / sender id kept as given."""
    text = addr.strip()
    if not text:
        raise AddressError(f"empty address (TON {ton}, NPI {npi})")
    if ton == TON_INTERNATIONAL:
        return _international(text)
    if ton == TON_NATIONAL:
        return _national(text, country)
    if ton == TON_UNKNOWN and npi in (NPI_UNKNOWN, NPI_ISDN):
        return _unknown(text, country)
    return text


def _international(text: str) -> str:
    """Return `+` and the digits; what is not 7-15 digits (a mislabelled short code) as given."""
    match = _INTERNATIONAL.fullmatch(text)
    if not match:
        return text
    international = "+" + match.group(1)
    try:
        return normalize_number(international)
    except InvalidNumber:
        return international


def _national(text: str, country: str | None) -> str:
    """Return a national number in E.164 for `country`; what its plan rejects, as given."""
    if country is None:
        raise AddressError(
            f"{text!r} is a national number (TON 2): set the connector's country to read it"
        )
    country = country.upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise AddressError(f"country {country!r} is not an ISO 3166 region phonenumbers knows")
    try:
        return normalize_number(text, country)
    except InvalidNumber:
        # short codes, or digits we cannot place: a made-up "+44 0..." would be worse than raw
        return text


def _unknown(text: str, country: str | None) -> str:
    """Read an address of unknown type by its shape."""
    if text.startswith("+"):
        return _international(text)
    if not text.isdigit() or _SHORT_CODE.fullmatch(text):
        return text
    if text.startswith("0"):
        return _national(text, country) if country else text
    return _international(text) if len(text) >= 10 else text


def smpp_address(number: str) -> tuple[str, int, int]:
    """Return (address, TON, NPI) for a number we store, to send from or to."""
    text = number.strip()
    if not text:
        raise AddressError("empty address")
    e164 = _E164.fullmatch(text)
    if e164:
        return e164.group(1), TON_INTERNATIONAL, NPI_ISDN
    if text.startswith("+"):
        raise AddressError(f"{number!r} is not an E.164 number (+ and up to 15 digits)")
    if _SHORT_CODE.fullmatch(text):
        return text, TON_NETWORK_SPECIFIC, NPI_UNKNOWN
    if text.isdigit():
        if len(text) > _MAX_ADDRESS:
            raise AddressError(f"{number!r} is longer than SMPP's {_MAX_ADDRESS} characters")
        return text, TON_UNKNOWN, NPI_ISDN
    if len(text) > _MAX_SENDER_ID:
        raise AddressError(
            f"sender id {number!r} has {len(text)} characters; at most {_MAX_SENDER_ID} can be sent"
        )
    return text, TON_ALPHANUMERIC, NPI_UNKNOWN
