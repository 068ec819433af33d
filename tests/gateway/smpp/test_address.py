"""SMPP addresses: (address, TON, NPI) to the numbers we store, and back."""
import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.numbers import InvalidNumber, normalize_number
from gateway.smpp.address import AddressError, normalize_address, smpp_address


@pytest.mark.parametrize(
    ("addr", "ton", "npi", "country", "expected"),
    [
        # international
        ("12125550101", 1, 1, None, "+12125550101"),
        ("+12125550101", 1, 1, None, "+12125550101"),
        (" 447911123456 ", 1, 1, "US", "+447911123456"),
        ("4407911123456", 1, 1, None, "+447911123456"),  # trunk 0 after the country code
        ("99912345678", 1, 1, None, "+99912345678"),  # invalid, still kept with its +
        ("12345", 1, 1, None, "12345"),  # a short code mislabelled international
        ("Shop", 1, 1, None, "Shop"),
        # national
        ("2125550101", 2, 1, "US", "+12125550101"),
        ("07911123456", 2, 1, "GB", "+447911123456"),
        ("07911123456", 2, 1, "gb", "+447911123456"),
        ("2125550101", 2, 8, "US", "+12125550101"),
        ("Shop", 2, 1, "US", "Shop"),
        ("12345", 2, 1, "US", "12345"),  # short code
        ("079112345", 2, 1, "GB", "079112345"),  # not in the plan: kept, not made up
        # kept as given
        ("MyShop", 5, 0, None, "MyShop"),
        ("Bank 24", 5, 0, "US", "Bank 24"),
        ("12345", 3, 0, None, "12345"),
        ("7726", 6, 0, None, "7726"),
        ("5550101", 4, 1, None, "5550101"),
        # unknown type, read by shape
        ("+12125550101", 0, 0, None, "+12125550101"),
        ("12125550101", 0, 0, None, "+12125550101"),
        ("12125550101", 0, 1, None, "+12125550101"),
        ("07911123456", 0, 0, "GB", "+447911123456"),
        ("00447911123456", 0, 1, "GB", "+447911123456"),
        ("07911123456", 0, 0, None, "07911123456"),  # never "+0..."
        ("123456789", 0, 0, None, "123456789"),
        ("12345", 0, 0, "US", "12345"),
        ("INFO", 0, 0, None, "INFO"),
        ("12125550101", 0, 9, None, "12125550101"),  # private numbering plan
    ],
)
def test_normalize_address(addr, ton, npi, country, expected):
    assert normalize_address(addr, ton, npi, country) == expected


@pytest.mark.parametrize(
    ("addr", "ton", "country", "reason"),
    [
        ("2125550101", 2, None, "national number .* set the connector's country"),
        ("2125550101", 2, "XX", "country 'XX' is not an ISO 3166 region"),
        ("   ", 1, None, "empty address"),
    ],
)
def test_addresses_that_cannot_be_kept(addr, ton, country, reason):
    with pytest.raises(AddressError, match=reason):
        normalize_address(addr, ton, 1, country)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+12125550101", ("12125550101", 1, 1)),
        (" +447911123456", ("447911123456", 1, 1)),
        ("12345", ("12345", 3, 0)),
        ("555", ("555", 3, 0)),
        ("2125550101", ("2125550101", 0, 1)),
        ("MyShop", ("MyShop", 5, 0)),
        ("Bank 24", ("Bank 24", 5, 0)),
    ],
)
def test_smpp_address(number, expected):
    assert smpp_address(number) == expected


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("", "empty"),
        ("+1 212 555", "not an E.164 number"),
        ("+1234567890123456", "not an E.164 number"),
        ("TwelveLetter", "has 12 characters; at most 11"),
        ("1" * 21, "longer than SMPP's 20"),
    ],
)
def test_smpp_address_refuses(number, reason):
    with pytest.raises(AddressError, match=reason):
        smpp_address(number)


valid_numbers = st.sampled_from(["US", "GB", "DE", "FR", "IN", "BR", "JP", "NG", "AU"]).map(
    lambda region: phonenumbers.format_number(
        phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE),
        phonenumbers.PhoneNumberFormat.E164,
    )
)


@given(st.one_of(valid_numbers, st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)))
def test_e164_round_trip(number):
    addr, ton, npi = smpp_address(number)
    assert (ton, npi) == (1, 1)
    try:
        assert normalize_address(addr, ton, npi) == normalize_number(number)
    except InvalidNumber:  # kept with its + as the SMSC gave it
        assert normalize_address(addr, ton, npi) == number


@given(st.one_of(st.from_regex(r"[1-9][0-9]{2,7}", fullmatch=True),
                 st.from_regex(r"[A-Za-z][A-Za-z0-9 ]{0,9}[A-Za-z0-9]", fullmatch=True)))
def test_short_codes_and_sender_ids_round_trip(text):
    assert normalize_address(*smpp_address(text)) == text
