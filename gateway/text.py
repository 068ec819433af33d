"""SMS text rules: which alphabet a text needs and how many segments it takes.

Rules:
- A text goes out in GSM-7 when every character is in the GSM 03.38 default alphabet or its
  extension table, otherwise in UCS-2. The alphabet comes from the `gsm0338` package.
- GSM-7: 160 septets in a single message, 153 per part of a long one; extension-table characters
  (form feed, ^ { } \\ [ ~ ] | €) take 2 septets (escape + character).
- UCS-2: 70 UTF-16 code units single, 67 per part; a character outside the BMP (most emoji) takes 2.
- A character's units are never split across parts (no broken escape or surrogate pair), so
  counting packs characters greedily, exactly as a splitter must.
- GSM-7 bytes here are unpacked septets, one per byte (as SMPP carries them); an extension
  character is the escape 0x1B followed by its code. Decoding never raises: an escape before a
  code the extension table lacks reads as that code's basic character (3GPP TS 23.038), and a
  byte above 0x7F or a dangling escape reads as U+FFFD.
- Every decodable message is storable: `storable` replaces what no database can hold (U+0000,
  lone surrogates) with U+FFFD and says whether it had to, so the edge can keep the original.
- Pure functions: no I/O, no state.
"""
from __future__ import annotations

import re
import unicodedata

from gsm0338 import Codec
from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

GSM7, UCS2 = "GSM-7", "UCS-2"

_ESCAPE = 0x1B
_GSM_BASIC = frozenset(
    unicodedata.lookup(name) for code, name in BASIC_CHARACTER_SET.items() if code != _ESCAPE
)
GSM_EXTENSION = frozenset(unicodedata.lookup(name) for name in BASIC_CHARACTER_SET_EXTENSION.values())
GSM_ALPHABET = _GSM_BASIC | GSM_EXTENSION

_GSM_CODEC = Codec()
_GSM_DECODE = {code: unicodedata.lookup(name) for code, name in BASIC_CHARACTER_SET.items()}
_GSM_DECODE_EXTENSION = {
    code: unicodedata.lookup(name) for code, name in BASIC_CHARACTER_SET_EXTENSION.items()
}
_REPLACEMENT = "\ufffd"

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
    encoding, segments = split_segments(text)
    return encoding, len(segments)


def split_segments(text: str) -> tuple[str, list[str]]:
    """Return (encoding, the text of each segment): the one split that counting and sending share."""
    encoding = encoding_for(text)
    single, part = LIMITS[encoding]
    if count_units(text, encoding) <= single:
        return encoding, [text]
    return encoding, _pack(text, encoding, part)


def _pack(text: str, encoding: str, part: int) -> list[str]:
    """Cut `text` into parts of at most `part` units, characters packed whole, in order."""
    parts: list[str] = []
    start, used = 0, 0
    for index, char in enumerate(text):
        units = char_units(char, encoding)
        if used + units > part:
            parts.append(text[start:index])
            start, used = index, 0
        used += units
    parts.append(text[start:])
    return parts


def gsm7_encode(text: str) -> bytes:
    """Return `text` as unpacked GSM-7 septets; ValueError when a character is not in the alphabet."""
    if not GSM_ALPHABET.issuperset(text):
        raise ValueError(f"not in the GSM 03.38 alphabet: {sorted(set(text) - GSM_ALPHABET)!r}")
    return _GSM_CODEC.encode(text)[0]


def gsm7_decode(data: bytes) -> str:
    """Return the text of unpacked GSM-7 septets; never raises."""
    chars: list[str] = []
    escaped = False
    for byte in data:
        if byte == _ESCAPE and not escaped:
            escaped = True
            continue
        chars.append(_gsm_char(byte, escaped))
        escaped = False
    if escaped:
        chars.append(_REPLACEMENT)
    return "".join(chars)


def _gsm_char(byte: int, escaped: bool) -> str:
    """Read one septet: after an escape the extension table first, then the basic one (TS 23.038)."""
    if escaped and byte in _GSM_DECODE_EXTENSION:
        return _GSM_DECODE_EXTENSION[byte]
    if escaped and byte == _ESCAPE:
        return " "  # 0x1B 0x1B is reserved for a further table; TS 23.038 shows a space
    return _GSM_DECODE.get(byte, _REPLACEMENT)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> tuple[str, bool]:
    """`text` with U+0000 and lone surrogates (PostgreSQL and SQLite refuse them) as U+FFFD; whether any was."""
    if _UNSTORABLE.search(text) is None:
        return text, False
    return _UNSTORABLE.sub(_REPLACEMENT, text), True
