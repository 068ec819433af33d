"""SMS text rules: encoding and segment counting."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.text import GSM7, GSM_EXTENSION, UCS2, count_segments, count_units, encoding_for, storable

GSM_BASIC_SAMPLE = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCXYZÄÖÑÜ§¿abcxyzäöñüà"
EXTENSION = "€[]{}~^\\|\f"

basic_text = st.text(alphabet=GSM_BASIC_SAMPLE)
emoji = st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F)


def test_alphabets():
    assert encoding_for("Hello, world! @£$") == GSM7
    assert encoding_for(EXTENSION) == GSM7
    assert encoding_for("Привет") == UCS2
    assert encoding_for("ok 😀") == UCS2
    assert encoding_for("") == GSM7
    assert set(EXTENSION) == GSM_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (GSM7, 1)),
        ("a" * 160, (GSM7, 1)),
        ("a" * 161, (GSM7, 2)),
        ("a" * 306, (GSM7, 2)),
        ("a" * 307, (GSM7, 3)),
        ("€" * 80, (GSM7, 1)),
        ("€" * 81, (GSM7, 2)),
        ("a" * 159 + "€", (GSM7, 2)),
        ("ж" * 70, (UCS2, 1)),
        ("ж" * 71, (UCS2, 2)),
        ("ж" * 134, (UCS2, 2)),
        ("ж" * 135, (UCS2, 3)),
        ("😀" * 35, (UCS2, 1)),
        ("😀" * 36, (UCS2, 2)),
    ],
)
def test_segment_limits(text, expected):
    assert count_segments(text) == expected


def test_escape_pair_never_straddles_a_part():
    # 152 septets then '€' (2): the pair cannot end part one, so '€' opens part two.
    text = "a" * 152 + "€" + "a" * 152
    assert count_units(text) == 306
    assert count_segments(text) == (GSM7, 3)


def test_surrogate_pair_never_straddles_a_part():
    text = "ж" * 66 + "😀" + "ж" * 66
    assert count_units(text) == 134
    assert count_segments(text) == (UCS2, 3)


@given(basic_text)
def test_gsm_text_of_n_chars(text):
    n = len(text)
    assert count_units(text) == n
    assert count_segments(text) == (GSM7, 1 if n <= 160 else math.ceil(n / 153))


@given(basic_text, st.lists(st.sampled_from(EXTENSION)))
def test_extension_chars_count_two(text, extra):
    combined = text + "".join(extra)
    assert count_units(combined) == len(text) + 2 * len(extra)
    encoding, segments = count_segments(combined)
    assert encoding == GSM7
    units = count_units(combined)
    assert segments == 1 if units <= 160 else segments >= math.ceil(units / 153)


@given(basic_text, st.lists(emoji, min_size=1))
def test_emoji_turn_text_into_ucs2_counting_two_units(text, emojis):
    combined = text + "".join(emojis)
    units = len(text) + 2 * len(emojis)
    assert count_units(combined) == units == len(combined.encode("utf-16-le")) // 2
    encoding, segments = count_segments(combined)
    assert encoding == UCS2
    assert segments == 1 if units <= 70 else math.ceil(units / 67) <= segments <= math.ceil(units / 66)


@given(st.text(max_size=500))
def test_segments_grow_with_text(text):
    encoding, segments = count_segments(text)
    single = 160 if encoding == GSM7 else 70
    assert (segments == 1) == (count_units(text) <= single)
    assert count_segments(text + text)[1] >= segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a\x00b", "a\ufffdb"), ("\ud800", "\ufffd"), ("\udfff\ud83d", "\ufffd\ufffd"), ("\x00" * 3, "\ufffd" * 3)],
)
def test_storable_replaces_what_no_store_holds(text, expected):
    assert storable(text) == (expected, True)


def test_storable_keeps_every_other_text_as_it_is():
    text = "Grüße € 😀 \t\x01\x7f\ufffd"
    assert storable(text) == (text, False)


unstorable = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()) | st.just("\x00")


@given(st.text(alphabet=st.characters() | unstorable))
def test_storable_text_always_encodes_and_keeps_its_length(text):
    out, changed = storable(text)
    out.encode("utf-8")  # strict: no lone surrogate survives
    assert "\x00" not in out and len(out) == len(text)
    assert changed == (out != text)
