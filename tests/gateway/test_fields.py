"""gateway.fields: the form reader the form-posting providers (Twilio, Vonage's SMS API, Plivo) share."""
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.fields import form_pairs

# Bodies as providers post them, and what a forger might: "+" and "%" anywhere, bare names, empty parts,
# percent-escapes that are not UTF-8, cut short or not hex.
PIECES = st.sampled_from(["a", "Body", "=", "&", "+", "%", "%2B", "%20", "%C3%A9", "%FF", "%E2%82", "%G1", "é", " ",
                          ";", "\udcff", "1"])


@settings(max_examples=500, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_reads_any_form_as_parse_qsl_does(text):
    assert form_pairs(text, errors="replace") == parse_qsl(text, keep_blank_values=True, errors="replace")
    try:
        expected = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            form_pairs(text)
    else:
        assert form_pairs(text) == expected


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=25))
def test_reads_back_what_urlencode_wrote(pairs):
    for encode in (urlencode, lambda p: urlencode(p, quote_via=quote)):
        assert form_pairs(encode(pairs)) == [(n, v) for n, v in pairs]
