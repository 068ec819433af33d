"""SMS text rules: which alphabet a text needs and how many segments it takes.

Rules:
- A text goes out in GSM-7 when every character is in the GSM 03.38 default alphabet or its
  extension table, otherwise in UCS-2. The alphabet comes from the `gsm0338` package.
- GSM-7: 160 septets in a single message, 153 per part of a long one; extension-table characters
  (form feed, ^ { } \\ [ ~ ] | €) take 2 septets (escape + character).
- UCS-2: 70 UTF-16 code units single, 67 per part; a character outside the BMP (most emoji) takes 2.
- A character's units are never split across parts (no broken escape or surrogate pair), so
  counting packs characters greedily, exactly as a splitter must.
- Pure functions: no I/O, no state.
"""
from __future__ import annotations

import unicodedata

from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

GSM7, UCS2 = "GSM-7", "UCS-2"

_ESCAPE = 0x1B
_GSM_BASIC = frozenset(
    unicodedata.lookup(name) for code, name in BASIC_CHARACTER_SET.items() if code != _ESCAPE
)
GSM_EXTENSION = frozenset(unicodedata.lookup(name) for name in BASIC_CHARACTER_SET_EXTENSION.values())
GSM_ALPHABET = _GSM_BASIC | GSM_EXTENSION

# encoding -> (units in a single message, units per part of a long message)
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


def encoding_for(text: str) -> str:
    """Return the encoding `text` needs: GSM-7 when the GSM alphabet covers it, else UCS-2."""
    return GSM7 if GSM_ALPHABET.issuperset(text) else UCS2


def char_units(char: str, encoding: str) -> int:
    """Return how many septets (GSM-7) or UTF-16 code units (UCS-2) one character takes."""
    if encoding == GSM7:
        return 2 if char in GSM_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def count_units(text: str, encoding: str | None = None) -> int:
    """Return the length of `text` in septets or UTF-16 code units, as a composer shows it."""
    encoding = encoding or encoding_for(text)
    return sum(char_units(char, encoding) for char in text)


def count_segments(text: str) -> tuple[str, int]:
    """Return (encoding, number of segments) for `text`; an empty text still takes one."""
    encoding = encoding_for(text)
    single, part = LIMITS[encoding]
    if count_units(text, encoding) <= single:
        return encoding, 1
    return encoding, _packed_parts(text, encoding, part)


def _packed_parts(text: str, encoding: str, part: int) -> int:
    """Count parts of `part` units when characters are packed whole, in order."""
    parts, used = 1, 0
    for char in text:
        units = char_units(char, encoding)
        if used + units > part:
            parts, used = parts + 1, 0
        used += units
    return parts
