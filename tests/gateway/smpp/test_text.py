"""SMPP short message text: decoding by data_coding, splitting into submit_sm parts."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.text import (
    ESM_UDHI,
    PartSpec,
    TooLong,
    decode_short_message,
    encode_parts,
    is_binary,
)
from gateway.text import GSM_ALPHABET, GSM_EXTENSION, count_segments

GSM_CHARS = "".join(sorted(GSM_ALPHABET))
EXTENSION = "".join(sorted(GSM_EXTENSION))
EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)

gsm_text = st.text(alphabet=GSM_CHARS, max_size=900)
extension_heavy = st.text(alphabet=EXTENSION + "ab", max_size=600)
any_text = st.text(max_size=400)
emoji_text = st.lists(st.one_of(EMOJI, st.sampled_from("жa ")), max_size=300).map("".join)
texts = st.one_of(gsm_text, extension_heavy, any_text, emoji_text)


def user_data(part: PartSpec) -> bytes:
    """The part's text bytes: message_payload, or short_message without its UDH."""
    data = part.short_message or part.tlvs.get("message_payload", b"")
    if part.esm_class & ESM_UDHI:
        return data[1 + data[0]:]
    return data


def airtime_octets(part: PartSpec) -> int:
    """Octets the part takes on the air: GSM septets are packed after a septet-aligned UDH."""
    udh = part.short_message[0] + 1 if part.esm_class & ESM_UDHI else 0
    if part.data_coding == 8:
        return len(part.short_message)
    septets = math.ceil(udh * 8 / 7) + len(part.short_message) - udh
    return math.ceil(septets * 7 / 8)


def join_text(parts: list[PartSpec]) -> str:
    return decode_short_message(parts[0].data_coding, b"".join(user_data(part) for part in parts))


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_coding", "payload", "alphabet", "expected"),
    [
        (0, b"Hello\x00 \x01\x02\x40", "gsm", "Hello@ £$¡"),
        (0, b"\x1be5 \x1b< \x1b/", "gsm", "€5 [ \\"),
        (0, b"caf\xe9", "latin1", "café"),
        (0, b"plain", "ascii", "plain"),
        (0, b"bad \xff", "ascii", "bad \ufffd"),
        (1, b"IA5 text", "gsm", "IA5 text"),
        (3, b"\xc7a va", "gsm", "Ça va"),
        (8, "Привет".encode("utf-16-be"), "gsm", "Привет"),
        (8, b"\xd8\x3d\xde\x00", "gsm", "😀"),  # a surrogate pair is one character
        (2, b"\x00\xff\x80", "gsm", "\x00\xff\x80"),
        (4, b"\x06\x05\x04", "gsm", "\x06\x05\x04"),
        (6, "Да".encode("iso8859_5"), "gsm", "Да"),
        (0xF0, b"\x1be", "gsm", "€"),  # GSM DCS message class 0, default alphabet
        (0x18, "ж".encode("utf-16-be"), "gsm", "ж"),  # GSM DCS general group, UCS-2
    ],
)
def test_decode_by_data_coding(data_coding, payload, alphabet, expected):
    assert decode_short_message(data_coding, payload, alphabet) == expected


def test_gsm_decoding_of_odd_escapes():
    # An escape before a code the extension table lacks reads as the basic character (TS 23.038).
    assert decode_short_message(0, b"\x1bA") == "A"
    assert decode_short_message(0, b"a\x1b\x1bb") == "a b"
    assert decode_short_message(0, b"end\x1b") == "end\ufffd"
    assert decode_short_message(0, b"\x80") == "\ufffd"


def test_broken_ucs2_reads_with_replacement_characters():
    assert decode_short_message(8, b"\xd8\x3d") == "\ufffd"  # high surrogate alone
    assert decode_short_message(8, b"\x00a\x00") == "a\ufffd"  # odd length


def test_binary_codings_are_flagged():
    assert [is_binary(dc) for dc in (0, 1, 2, 3, 4, 8, 0xF0, 0xF4, 0x14)] == [
        False, False, True, False, True, False, False, True, True,
    ]


def test_unknown_default_alphabet_is_a_configuration_error():
    with pytest.raises(ValueError, match="default_alphabet"):
        decode_short_message(0, b"x", "ebcdic")


@given(st.integers(min_value=0, max_value=255), st.binary(max_size=300),
       st.sampled_from(["gsm", "latin1", "ascii"]))
def test_decoding_never_raises(data_coding, payload, alphabet):
    assert isinstance(decode_short_message(data_coding, payload, alphabet), str)


# --- encoding -------------------------------------------------------------------------------


def test_single_gsm_part():
    assert encode_parts("Hi €1") == [PartSpec(0, 0, b"Hi \x1be1", {})]


def test_single_ucs2_part_with_emoji():
    assert encode_parts("ok 😀") == [PartSpec(0, 8, "ok 😀".encode("utf-16-be"), {})]


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("a" * 160, [160]),
        ("a" * 161, [6 + 153, 6 + 8]),
        ("ж" * 70, [140]),
        ("ж" * 71, [6 + 134, 6 + 8]),
        ("a" * 152 + "€" + "a" * 10, [6 + 152, 6 + 2 + 10]),  # the pair opens part two
        ("ж" * 66 + "😀" + "ж" * 5, [6 + 132, 6 + 4 + 10]),  # so does the surrogate pair
    ],
)
def test_part_sizes(text, sizes):
    assert [len(part.short_message) for part in encode_parts(text)] == sizes


def test_udh_parts():
    parts = encode_parts("a" * 200, ref=0x1A7)
    assert [part.short_message[:6] for part in parts] == [
        b"\x05\x00\x03\xa7\x02\x01", b"\x05\x00\x03\xa7\x02\x02",
    ]
    assert {(part.esm_class, part.data_coding, len(part.tlvs)) for part in parts} == {(0x40, 0, 0)}


def test_sar_parts():
    parts = encode_parts("ж" * 100, concat="sar", ref=0x1234)
    assert [part.tlvs for part in parts] == [
        {"sar_msg_ref_num": 0x1234, "sar_total_segments": 2, "sar_segment_seqnum": 1},
        {"sar_msg_ref_num": 0x1234, "sar_total_segments": 2, "sar_segment_seqnum": 2},
    ]
    assert [(part.esm_class, part.data_coding, len(part.short_message)) for part in parts] == [
        (0, 8, 134), (0, 8, 66),
    ]


def test_payload_part_holds_the_whole_text():
    text = "€" * 100
    assert encode_parts(text, concat="payload") == [
        PartSpec(0, 0, b"", {"message_payload": b"\x1be" * 100})
    ]
    assert encode_parts("short", concat="payload") == [PartSpec(0, 0, b"short", {})]


def test_too_long_names_the_parts_needed():
    with pytest.raises(TooLong, match="needs 11 parts in GSM-7; at most 10") as caught:
        encode_parts("a" * (153 * 10 + 1))
    assert caught.value.parts == 11
    assert len(encode_parts("a" * 153 * 10)) == 10
    with pytest.raises(TooLong):
        encode_parts("a" * 400, concat="payload", max_parts=2)


def test_unknown_concat_mode():
    with pytest.raises(ValueError, match="concat must be one of udh, sar, payload"):
        encode_parts("a" * 200, concat="tlv")


def test_lone_surrogate_goes_out_as_question_mark():
    assert encode_parts("a\ud83d") == [PartSpec(0, 8, b"\x00a\x00?", {})]


@given(texts, st.sampled_from(["udh", "sar", "payload"]), st.integers(0, 70000))
def test_parts_give_back_the_text(text, concat, ref):
    assert join_text(encode_parts(text, max_parts=255, concat=concat, ref=ref)) == text


@given(texts, st.sampled_from(["udh", "sar"]))
def test_parts_agree_with_the_segment_count(text, concat):
    assert len(encode_parts(text, max_parts=255, concat=concat)) == count_segments(text)[1]


@given(texts)
def test_parts_fit_the_air_and_split_no_pair(text):
    for part in encode_parts(text, max_parts=255):
        assert airtime_octets(part) <= 140
        if part.data_coding == 0:
            assert not part.short_message.endswith(b"\x1b")
        else:
            assert not 0xD8 <= part.short_message[-2] <= 0xDB


@given(texts, st.integers(1, 12))
def test_max_parts_is_enforced(text, max_parts):
    needed = count_segments(text)[1]
    if needed > max_parts:
        with pytest.raises(TooLong):
            encode_parts(text, max_parts=max_parts)
    else:
        assert len(encode_parts(text, max_parts=max_parts)) == needed
