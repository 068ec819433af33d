"""Inbound long messages: read a part's place from its UDH or SAR TLVs, join the parts.

Rules:
- A part's place comes from its UDH when esm_class has UDHI (IEI 0x00 with an 8-bit reference,
  IEI 0x08 with a 16-bit one; other elements are skipped), else from the SAR TLVs, else it is a
  message of one part. `message_payload` carries the user data when short_message is empty.
- Payloads stay bytes until the parts are joined: a foreign sender may cut an escape pair or a
  surrogate pair between parts, so text is decoded once, from the joined bytes.
- A malformed header is a BadFragment naming what is wrong; the caller answers with an error.
- Pure functions: keeping parts until the rest arrive (bounded, timed) is the caller's job.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import SupportsInt, cast

from gateway.smpp.text import ESM_UDHI, decode_short_message

# IEI -> (element length, reference width in bits)
_CONCAT_ELEMENTS = {0x00: (3, 8), 0x08: (4, 16)}
_SAR_TLVS = ("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum")


@dataclass(frozen=True)
class Fragment:
    """One part of a message: where it goes and its user data, UDH removed, not decoded."""

    ref: int | None
    width: int  # bits of the reference: 0 (none), 8 or 16
    total: int
    seq: int
    data_coding: int
    payload: bytes


class BadFragment(ValueError):
    """A part whose concatenation header cannot be read."""


def fragment_of(
    esm_class: int, data_coding: int, short_message: bytes, tlvs: Mapping[str, object]
) -> Fragment:
    """Return the fragment a deliver_sm (or data_sm) carries; BadFragment when malformed."""
    payload = _user_data(short_message, tlvs)
    place: tuple[int | None, int, int, int] | None = None  # (ref, width, total, seq)
    if esm_class & ESM_UDHI:
        place, payload = _split_udh(payload)
    place = place or _sar_place(tlvs) or (None, 0, 1, 1)
    ref, width, total, seq = place
    _check_place(total, seq)
    return Fragment(ref, width, total, seq, data_coding, payload)


def _user_data(short_message: bytes, tlvs: Mapping[str, object]) -> bytes:
    """Return short_message, or message_payload when short_message is empty."""
    payload = tlvs.get("message_payload")
    if short_message or not payload:
        return bytes(short_message)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise BadFragment(f"message_payload must be bytes, not {type(payload).__name__}")
    return bytes(payload)


def _split_udh(data: bytes) -> tuple[tuple[int, int, int, int] | None, bytes]:
    """Return (place from the UDH or None, user data after the UDH)."""
    if not data:
        raise BadFragment("esm_class says a UDH is present but the message is empty")
    length = data[0]
    if 1 + length > len(data):
        raise BadFragment(f"UDH length {length} runs past the {len(data) - 1} octets after it")
    return _concat_element(data[1:1 + length]), data[1 + length:]


def _concat_element(header: bytes) -> tuple[int, int, int, int] | None:
    """Walk the UDH's information elements; return (ref, width, total, seq) of the concat one."""
    place, pos = None, 0
    while pos < len(header):
        if pos + 2 > len(header):
            raise BadFragment(f"UDH ends inside the information element at octet {pos + 1}")
        iei, size = header[pos], header[pos + 1]
        body = header[pos + 2:pos + 2 + size]
        if len(body) < size:
            raise BadFragment(f"UDH element 0x{iei:02X} claims {size} octets; {len(body)} remain")
        if iei in _CONCAT_ELEMENTS:
            place = _concat_place(iei, body)
        pos += 2 + size
    return place


def _concat_place(iei: int, body: bytes) -> tuple[int, int, int, int]:
    """Read a concatenation element: reference, then total, then sequence number."""
    size, width = _CONCAT_ELEMENTS[iei]
    if len(body) != size:
        raise BadFragment(f"UDH concatenation element 0x{iei:02X} has {len(body)} octets, not {size}")
    return int.from_bytes(body[:-2], "big"), width, body[-2], body[-1]


def _sar_place(tlvs: Mapping[str, object]) -> tuple[int, int, int, int] | None:
    """Return (ref, 16, total, seq) from the SAR TLVs, None when there are none."""
    present = [name for name in _SAR_TLVS if tlvs.get(name) is not None]
    if not present:
        return None
    if len(present) < len(_SAR_TLVS):
        missing = ", ".join(name for name in _SAR_TLVS if name not in present)
        raise BadFragment(f"SAR TLVs incomplete: missing {missing}")
    try:
        # any object: int() refuses the wrong kind with the TypeError caught below
        ref, total, seq = (int(cast(SupportsInt, tlvs[name])) for name in _SAR_TLVS)
    except (TypeError, ValueError):
        raise BadFragment("SAR TLVs must be integers") from None
    return ref, 16, total, seq


def _check_place(total: int, seq: int) -> None:
    if total < 1:
        raise BadFragment("concatenation header says the message has 0 parts")
    if not 1 <= seq <= total:
        raise BadFragment(f"part number {seq} is outside 1..{total}")


def assemble(fragments: Sequence[Fragment], default_alphabet: str = "gsm") -> tuple[str, bool]:
    """Return (text, complete): the parts joined in order, duplicates ignored, decoded once."""
    if not fragments:
        raise ValueError("no fragments to assemble")
    by_seq: dict[int, Fragment] = {}
    for fragment in fragments:
        by_seq.setdefault(fragment.seq, fragment)
    ordered = [by_seq[seq] for seq in sorted(by_seq)]
    complete = set(by_seq) >= set(range(1, ordered[0].total + 1))
    text = "".join(_decode_run(run, default_alphabet) for run in _runs(ordered))
    return text, complete


def _runs(ordered: list[Fragment]) -> list[list[Fragment]]:
    """Group parts into runs of consecutive numbers and one data_coding; each decodes alone."""
    def run_key(pair: tuple[int, Fragment]) -> tuple[int, int]:
        index, fragment = pair
        return fragment.seq - index, fragment.data_coding

    return [[fragment for _, fragment in run] for _, run in groupby(enumerate(ordered), run_key)]


def _decode_run(run: list[Fragment], default_alphabet: str) -> str:
    payload = b"".join(fragment.payload for fragment in run)
    return decode_short_message(run[0].data_coding, payload, default_alphabet)


def concat_key(source: str, dest: str, fragment: Fragment) -> str:
    """Return the key a message's parts are stored under: (from, to, ref, ref width, total)."""
    return json.dumps(
        [source, dest, fragment.ref, fragment.width, fragment.total], separators=(",", ":")
    )
