"""Inbound long messages: reading a part's place and joining parts."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.concat import BadFragment, Fragment, assemble, concat_key, fragment_of
from gateway.smpp.text import encode_parts
from tests.gateway.smpp.test_text import texts

UDHI = 0x40


def udh8(ref: int, total: int, seq: int) -> bytes:
    return bytes((5, 0x00, 3, ref, total, seq))


def udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq))


def test_udh_with_8_bit_reference():
    assert fragment_of(UDHI, 0, udh8(0xA7, 3, 2) + b"hello", {}) == Fragment(
        0xA7, 8, 3, 2, 0, b"hello"
    )


def test_udh_with_16_bit_reference():
    assert fragment_of(UDHI, 8, udh16(0x1234, 2, 1) + b"\x00a", {}) == Fragment(
        0x1234, 16, 2, 1, 8, b"\x00a"
    )


def test_other_information_elements_are_skipped():
    # application port addressing (IEI 0x05, 4 octets) before the concatenation element
    header = bytes((11, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0, 0x00, 3, 9, 2, 2))
    assert fragment_of(UDHI, 4, header + b"\x01\x02", {}) == Fragment(9, 8, 2, 2, 4, b"\x01\x02")


def test_udh_without_concatenation_is_a_single_part():
    header = bytes((6, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0))
    assert fragment_of(UDHI, 4, header + b"data", {}) == Fragment(None, 0, 1, 1, 4, b"data")


def test_sar_tlvs():
    tlvs = {"sar_msg_ref_num": 513, "sar_total_segments": 3, "sar_segment_seqnum": 3}
    assert fragment_of(0, 0, b"end", tlvs) == Fragment(513, 16, 3, 3, 0, b"end")


def test_message_payload_when_short_message_is_empty():
    assert fragment_of(0, 0, b"", {"message_payload": b"long text"}) == Fragment(
        None, 0, 1, 1, 0, b"long text"
    )
    assert fragment_of(UDHI, 0, b"", {"message_payload": udh8(1, 2, 1) + b"x"}).total == 2


def test_plain_message_is_a_single_part():
    assert fragment_of(0, 0, b"hi", {"message_state": None}) == Fragment(None, 0, 1, 1, 0, b"hi")


@pytest.mark.parametrize(
    ("esm_class", "short_message", "tlvs", "reason"),
    [
        (UDHI, b"", {}, "UDH is present but the message is empty"),
        (UDHI, b"\x05\x00\x03\x01", {}, "UDH length 5 runs past the 3 octets"),
        (UDHI, b"\x04\x00\x05\x01\x02x", {}, "element 0x00 claims 5 octets; 2 remain"),
        (UDHI, b"\x03\x05\x00\x01", {}, "UDH ends inside the information element at octet 3"),
        (UDHI, b"\x04\x00\x02\x01\x02", {}, "0x00 has 2 octets, not 3"),
        (UDHI, udh8(1, 0, 0) + b"x", {}, "0 parts"),
        (UDHI, udh8(1, 2, 0) + b"x", {}, "part number 0 is outside 1..2"),
        (UDHI, udh8(1, 2, 3) + b"x", {}, "part number 3 is outside 1..2"),
        (0, b"x", {"sar_msg_ref_num": 1, "sar_total_segments": 2}, "missing sar_segment_seqnum"),
        (0, b"x", {"sar_msg_ref_num": 1, "sar_total_segments": 2, "sar_segment_seqnum": 5},
         "part number 5"),
        (0, b"", {"message_payload": "text"}, "message_payload must be bytes"),
    ],
)
def test_malformed_headers(esm_class, short_message, tlvs, reason):
    with pytest.raises(BadFragment, match=reason):
        fragment_of(esm_class, 0, short_message, tlvs)


def test_assemble_in_order_ignoring_duplicates():
    parts = [Fragment(7, 8, 3, seq, 0, data) for seq, data in ((3, b"c"), (1, b"a"), (2, b"b"))]
    assert assemble(parts + parts[:1]) == ("abc", True)


def test_assemble_what_arrived_when_a_part_is_missing():
    parts = [Fragment(7, 8, 3, 1, 0, b"one "), Fragment(7, 8, 3, 3, 0, b"three")]
    assert assemble(parts) == ("one three", False)


def test_missing_part_does_not_glue_an_escape_to_the_wrong_character():
    parts = [Fragment(7, 8, 3, 1, 0, b"a\x1b"), Fragment(7, 8, 3, 3, 0, b"ez")]
    assert assemble(parts) == ("a\ufffdez", False)


def test_surrogate_pair_split_by_a_foreign_sender():
    text = "ж" * 66 + "😀" + "ж" * 66 + "end"
    data = text.encode("utf-16-be")
    cuts = [data[:134], data[134:268], data[268:]]  # part one ends on the high surrogate
    assert cuts[0][-2:] == b"\xd8\x3d"
    parts = [fragment_of(UDHI, 8, udh8(42, 3, seq) + cut, {}) for seq, cut in enumerate(cuts, 1)]
    assert assemble(parts[::-1]) == (text, True)


def test_escape_pair_split_by_a_foreign_sender():
    cuts = [b"price \x1b", b"e5"]
    parts = [fragment_of(UDHI, 0, udh8(3, 2, seq) + cut, {}) for seq, cut in enumerate(cuts, 1)]
    assert assemble(parts) == ("price €5", True)


def test_default_alphabet_applies_to_the_joined_text():
    parts = [Fragment(1, 8, 2, 1, 0, b"caf"), Fragment(1, 8, 2, 2, 0, b"\xe9")]
    assert assemble(parts, default_alphabet="latin1") == ("café", True)


def test_assemble_needs_fragments():
    with pytest.raises(ValueError, match="no fragments"):
        assemble([])


def test_concat_key():
    part = Fragment(7, 8, 3, 1, 0, b"")
    assert concat_key("+15550001", "+15550002", part) == '["+15550001","+15550002",7,8,3]'
    keys = {
        concat_key("+15550001", "+15550002", Fragment(7, 8, 3, seq, 0, b"x")) for seq in (1, 2, 3)
    }
    assert len(keys) == 1
    others = [Fragment(7, 16, 3, 1, 0, b""), Fragment(8, 8, 3, 1, 0, b""), Fragment(7, 8, 4, 1, 0, b"")]
    assert len({concat_key("a", "b", other) for other in others + [part]}) == 4
    assert concat_key("a", "b", part) != concat_key("b", "a", part)


@given(texts, st.sampled_from(["udh", "sar"]), st.integers(0, 65535), st.randoms())
def test_split_shuffle_and_assemble(text, concat, ref, random):
    parts = encode_parts(text, max_parts=255, concat=concat, ref=ref)
    fragments = [
        fragment_of(part.esm_class, part.data_coding, part.short_message, part.tlvs)
        for part in parts
    ]
    random.shuffle(fragments)
    assert len({concat_key("a", "b", fragment) for fragment in fragments}) == 1
    assert assemble(fragments + fragments[:2]) == (text, True)


@given(texts)
def test_payload_mode_is_one_fragment(text):
    [part] = encode_parts(text, max_parts=255, concat="payload")
    assert assemble([fragment_of(part.esm_class, part.data_coding, part.short_message, part.tlvs)]) == (
        text, True,
    )
