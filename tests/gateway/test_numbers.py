"""E.164 normalisation: strict for our numbers and recipients, lenient for senders."""
import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.numbers import InvalidNumber, normalize_number, normalize_sender


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+14155550100", None, "+14155550100"),
        (" +1 (415) 555-0100 ", None, "+14155550100"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("020 7946 0000", "GB", "+442079460000"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
    ],
)
def test_normalize_number_gives_e164(raw, region, expected):
    assert normalize_number(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "why"),
    [
        ("+112345", None, "too short"),
        ("+1", None, "does not look like a phone number"),
        ("", None, "empty"),
        ("4155550100", None, "country code"),
        ("12345", None, "country code"),
        ("ACME", None, "does not look like a phone number"),
        ("+15555550100", None, "numbering plan"),
    ],
)
def test_normalize_number_refuses_with_value_and_reason(raw, region, why):
    with pytest.raises(InvalidNumber) as caught:
        normalize_number(raw, region)
    assert repr(raw) in str(caught.value)
    assert why in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("raw", ["12345", "888", "12345678", "ACME", "Bank Alert", "INFO-24"])
def test_sender_keeps_short_codes_and_alphanumerics(raw):
    assert normalize_sender(raw) == raw


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+14155550100", None, "+14155550100"),
        ("4155550100", "US", "+14155550100"),
        ("14155550100", None, "+14155550100"),  # international without its '+'
        ("447911123456", None, "+447911123456"),
    ],
)
def test_sender_normalises_numbers(raw, region, expected):
    assert normalize_sender(raw, region) == expected


@pytest.mark.parametrize("raw", ["+112345", "123456789", "A very long sender", "", "+1"])
def test_sender_refuses_what_is_neither(raw):
    with pytest.raises(InvalidNumber, match="is not a valid phone number"):
        normalize_sender(raw)


@given(st.sampled_from(["US", "GB", "FR", "DE", "JP", "BR", "IN"]), st.booleans())
def test_example_numbers_round_trip(region, national):
    example = phonenumbers.example_number(region)
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL if national else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_number(phonenumbers.format_number(example, fmt), region) == e164
    assert normalize_number(e164) == e164
    assert normalize_sender(e164) == e164


@given(st.text(alphabet="0123456789", min_size=3, max_size=8))
def test_any_short_code_is_kept(digits):
    assert normalize_sender(digits) == digits
