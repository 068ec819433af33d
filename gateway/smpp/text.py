"""Short message text over SMPP: data_coding in, text out; text in, submit_sm parts out.

Rules:
- Splitting is `gateway.text.split_segments`, the same code that counts segments, so a message
  always goes out in exactly the number of parts the composer showed.
- GSM-7 travels as unpacked septets (one per byte, data_coding 0); the SMSC packs them. A part's
  airtime is its UDH octets (padded to a septet boundary) plus 7 bits a septet, within 140 octets:
  160 septets single, 6 UDH octets + 153 septets in a long message. UCS-2 is UTF-16-BE
  (data_coding 8), surrogate pairs included: 140 octets single, 6 + 134 in a long message.
- Escape pairs and surrogate pairs are never split, because segments hold whole characters.
- Decoding never raises on what a peer sent: unknown bytes become U+FFFD.
- Pure functions: no I/O, no state.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.text import GSM7, UCS2, gsm7_decode, gsm7_encode, split_segments

ESM_UDHI = 0x40  # esm_class bit: short_message starts with a user data header
DC_DEFAULT, DC_IA5, DC_LATIN1, DC_UCS2 = 0, 1, 3, 8

UDH_CONCAT_LENGTH = 6  # 05 00 03 ref total seq
MAX_CONCAT_PARTS = 255  # the total is one octet in the UDH and in sar_total_segments

CONCAT_MODES = ("udh", "sar", "payload")
DEFAULT_ALPHABETS = ("gsm", "latin1", "ascii")

Decoder = Callable[[bytes], str]


@dataclass(frozen=True)
class PartSpec:
    """One submit_sm's worth of a message: the fields and TLVs that carry its text."""

    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict = field(default_factory=dict)


class TooLong(ValueError):
    """A text that needs more parts than allowed."""

    def __init__(self, parts: int, max_parts: int, encoding: str):
        super().__init__(
            f"the text needs {parts} parts in {encoding}; at most {max_parts} are allowed"
        )
        self.parts = parts
        self.max_parts = max_parts
        self.encoding = encoding


def _codec(name: str) -> Decoder:
    """Return a decoder for a Python codec that replaces what it cannot read."""
    return lambda data: data.decode(name, errors="replace")


def _binary(data: bytes) -> str:
    return data.decode("latin-1")


_DEFAULT_DECODERS: dict[str, Decoder] = {
    "gsm": gsm7_decode,
    "latin1": _codec("latin-1"),
    "ascii": _codec("ascii"),
}
_UCS2 = _codec("utf-16-be")

# SMPP 3.4 section 5.2.19; 0 (SMSC default alphabet) is configured per connector.
_SMPP_DECODERS: dict[int, Decoder] = {
    DC_IA5: _codec("ascii"),
    2: _binary,
    DC_LATIN1: _codec("latin-1"),
    4: _binary,
    5: _codec("shift_jis"),
    6: _codec("iso8859_5"),
    7: _codec("iso8859_8"),
    DC_UCS2: _UCS2,
    10: _codec("iso2022_jp"),
    13: _codec("euc_jp"),
    14: _codec("euc_kr"),
}
_BINARY_CODINGS = frozenset({2, 4})

# encoding -> (data_coding, encoder)
_ENCODERS: dict[str, tuple[int, Callable[[str], bytes]]] = {
    GSM7: (DC_DEFAULT, gsm7_encode),
    # A lone surrogate (possible in a str from JSON) cannot travel: it goes out as "?".
    UCS2: (DC_UCS2, lambda text: text.encode("utf-16-be", errors="replace")),
}


def decode_short_message(data_coding: int, payload: bytes, default_alphabet: str = "gsm") -> str:
    """Return the text of a short message's user data (UDH already removed); never raises on bytes."""
    return _decoder(data_coding, default_alphabet)(payload)


def is_binary(data_coding: int) -> bool:
    """Say whether a data_coding marks 8-bit data (its decoded text is latin-1 of raw bytes)."""
    return _decoder(data_coding, "gsm") is _binary


def _decoder(data_coding: int, default_alphabet: str) -> Decoder:
    """Return the decoder for a data_coding; unknown ones read as 8-bit data."""
    if data_coding == DC_DEFAULT:
        return _default_decoder(default_alphabet)
    if data_coding <= 0x0F:
        return _SMPP_DECODERS.get(data_coding, _binary)
    return _gsm_dcs_decoder(data_coding)


def _default_decoder(default_alphabet: str) -> Decoder:
    """Return the decoder for data_coding 0, the SMSC's default alphabet."""
    try:
        return _DEFAULT_DECODERS[default_alphabet]
    except KeyError:
        raise ValueError(
            f"default_alphabet must be one of {', '.join(DEFAULT_ALPHABETS)}, not {default_alphabet!r}"
        ) from None


def _gsm_dcs_decoder(data_coding: int) -> Decoder:
    """Read data_coding above 15 as a GSM 03.38 data coding scheme, best effort."""
    group = data_coding >> 4
    if group <= 0x07:  # general data coding, bit 5 = compressed, bits 3..2 = alphabet
        if data_coding & 0x20:
            return _binary
        return {0: gsm7_decode, 1: _binary, 2: _UCS2}.get((data_coding >> 2) & 0x03, gsm7_decode)
    if group in (0x0C, 0x0D):  # message waiting indication, GSM-7
        return gsm7_decode
    if group == 0x0E:  # message waiting indication, UCS-2
        return _UCS2
    if group == 0x0F:  # message class, bit 2 = 8-bit data
        return _binary if data_coding & 0x04 else gsm7_decode
    return _binary


def encode_parts(
    text: str, *, max_parts: int = 10, concat: str = "udh", ref: int = 0
) -> list[PartSpec]:
    """Return the submit_sm parts for `text`; `ref` is used modulo 256 (UDH) or 65536 (SAR)."""
    build = _concat_builder(concat)
    encoding, segments = split_segments(text)
    limit = min(max_parts, MAX_CONCAT_PARTS)
    if len(segments) > limit:
        raise TooLong(len(segments), limit, encoding)
    data_coding, encode = _ENCODERS[encoding]
    if len(segments) == 1:
        return [PartSpec(0, data_coding, encode(text), {})]
    return build(data_coding, [encode(segment) for segment in segments], ref)


def _concat_builder(concat: str) -> Callable[[int, list[bytes], int], list[PartSpec]]:
    """Return the part builder for a concatenation mode."""
    try:
        return _CONCAT_BUILDERS[concat]
    except KeyError:
        raise ValueError(f"concat must be one of {', '.join(CONCAT_MODES)}, not {concat!r}") from None


def _udh_parts(data_coding: int, chunks: list[bytes], ref: int) -> list[PartSpec]:
    """Each chunk behind a concatenation UDH (IEI 0x00, 8-bit reference)."""
    total = len(chunks)
    return [
        PartSpec(ESM_UDHI, data_coding, bytes((5, 0x00, 3, ref & 0xFF, total, seq)) + chunk, {})
        for seq, chunk in enumerate(chunks, start=1)
    ]


def _sar_parts(data_coding: int, chunks: list[bytes], ref: int) -> list[PartSpec]:
    """Each chunk as it is, its place told by the SAR TLVs."""
    total = len(chunks)
    return [
        PartSpec(0, data_coding, chunk, _sar_tlvs(ref & 0xFFFF, total, seq))
        for seq, chunk in enumerate(chunks, start=1)
    ]


def _sar_tlvs(ref: int, total: int, seq: int) -> dict:
    return {"sar_msg_ref_num": ref, "sar_total_segments": total, "sar_segment_seqnum": seq}


def _payload_part(data_coding: int, chunks: list[bytes], ref: int) -> list[PartSpec]:
    """The whole text in message_payload; the SMSC splits it."""
    return [PartSpec(0, data_coding, b"", {"message_payload": b"".join(chunks)})]


_CONCAT_BUILDERS = {"udh": _udh_parts, "sar": _sar_parts, "payload": _payload_part}
