"""Delivery receipts: recognising, parsing, status mapping, message id bases."""
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.messages import DELIVERED, FAILED, SENT, UNDELIVERED
from gateway.smpp.receipts import (
    BadReceipt,
    Receipt,
    canonical_id,
    format_receipt,
    is_receipt,
    parse_receipt,
    receipt_status,
)

# Receipt texts in the styles SMSCs and providers document (ids, dates and texts as published).
RECEIPTS = {
    "vonage": (
        "id:0000000012345678 sub:001 dlvrd:001 submit date:1601010100 done date:1601010101 "
        "stat:DELIVRD err:000 text:none",
        Receipt("0000000012345678", "DELIVRD", "000", datetime(2016, 1, 1, 1, 0),
                datetime(2016, 1, 1, 1, 1), "001", "001", "none"),
    ),
    "seconds": (
        "id:64567564356765435676 sub:001 dlvrd:001 submit date:190608165232 "
        "done date:190608165237 stat:DELIVRD err:000 text:Hello World",
        Receipt("64567564356765435676", "DELIVRD", "000", datetime(2019, 6, 8, 16, 52, 32),
                datetime(2019, 6, 8, 16, 52, 37), "001", "001", "Hello World"),
    ),
    "undeliverable with error": (
        "id:0911897980 sub:001 dlvrd:000 submit date:1201121551 done date:1201121551 "
        "stat:UNDELIV err:075 text:-PROFILE",
        Receipt("0911897980", "UNDELIV", "075", datetime(2012, 1, 12, 15, 51),
                datetime(2012, 1, 12, 15, 51), "001", "000", "-PROFILE"),
    ),
    "capital Text and hex id": (
        "id:483D47F1 sub:001 dlvrd:001 submit date:0905151857 done date:0905151857 "
        "stat:DELIVRD err:000 Text:Dear Godwin Akpabio",
        Receipt("483D47F1", "DELIVRD", "000", datetime(2009, 5, 15, 18, 57),
                datetime(2009, 5, 15, 18, 57), "001", "001", "Dear Godwin Akpabio"),
    ),
    "no text field": (
        "id:40072910491427628 sub:001 dlvrd:001 submit date:1007291049 done date:1007291049 "
        "stat:DELIVRD err:000",
        Receipt("40072910491427628", "DELIVRD", "000", datetime(2010, 7, 29, 10, 49),
                datetime(2010, 7, 29, 10, 49), "001", "001", None),
    ),
    "upper case, extra spaces, text with colons": (
        "ID: 7A3BC01F  SUB:001   DLVRD:000 SUBMIT DATE:2301311200 DONE  DATE: 2301311205 "
        "STAT:EXPIRED  ERR:  000 TEXT: Meet at 10:30, id:x stat:DELIVRD",
        Receipt("7A3BC01F", "EXPIRED", "000", datetime(2023, 1, 31, 12, 0),
                datetime(2023, 1, 31, 12, 5), "001", "000", "Meet at 10:30, id:x stat:DELIVRD"),
    ),
    "minimal, underscores, long stat": (
        "id:abc-123 submit_date:2402291200 done_date:2402291201 stat:Rejected",
        Receipt("abc-123", "REJECTD", None, datetime(2024, 2, 29, 12, 0),
                datetime(2024, 2, 29, 12, 1)),
    ),
    "unreadable dates": (
        "id:9 submit date:2313311200 done date:soon stat:ACCEPTD err:0",
        Receipt("9", "ACCEPTD", "0"),
    ),
    "four-digit years, NUL at the end": (
        "id:12 sub:001 dlvrd:001 submit date:20240102030405 done date:20240102030506 "
        "stat:DELIVRD err:000 text:\x00",
        Receipt("12", "DELIVRD", "000", datetime(2024, 1, 2, 3, 4, 5),
                datetime(2024, 1, 2, 3, 5, 6), "001", "001", ""),
    ),
}


@pytest.mark.parametrize("style", RECEIPTS)
def test_receipt_styles(style):
    text, expected = RECEIPTS[style]
    assert parse_receipt(text, {}) == expected


def test_tlvs_win_over_the_text():
    text = RECEIPTS["vonage"][0]
    receipt = parse_receipt(text, {"receipted_message_id": b"BC614E\x00", "message_state": 5})
    assert (receipt.message_id, receipt.stat, receipt.err) == ("BC614E", "UNDELIV", "000")


def test_tlvs_alone_make_a_receipt():
    receipt = parse_receipt("", {"receipted_message_id": "abc", "message_state": 2})
    assert receipt == Receipt("abc", "DELIVRD")


def test_unknown_message_state_falls_back_to_the_text():
    assert parse_receipt("id:1 stat:DELIVRD", {"message_state": 0}).stat == "DELIVRD"


@pytest.mark.parametrize(
    ("text", "tlvs", "reason"),
    [
        ("hello there", {}, "without a message id"),
        ("stat:DELIVRD", {"receipted_message_id": b"\x00"}, "without a message id"),
        ("id:123 sub:001 err:000", {}, "without a state"),
        ("id: stat:DELIVRD", {}, "without a message id"),
    ],
)
def test_unparseable_receipts(text, tlvs, reason):
    with pytest.raises(BadReceipt, match=reason):
        parse_receipt(text, tlvs)


def test_is_receipt():
    assert [is_receipt(esm) for esm in (0x00, 0x04, 0x08, 0x10, 0x20, 0x40, 0x44, 0x03, 0x18)] == [
        False, True, True, True, True, False, True, False, False,
    ]


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("DELIVRD", DELIVERED), ("ACCEPTD", SENT), ("ENROUTE", SENT), ("UNKNOWN", SENT),
        ("UNDELIV", UNDELIVERED), ("EXPIRED", FAILED), ("REJECTD", FAILED), ("DELETED", FAILED),
        ("delivrd", DELIVERED), ("Delivered", DELIVERED), ("UNDELIVERABLE", UNDELIVERED),
        ("SOMETHING", SENT), ("", SENT),
    ],
)
def test_receipt_status(stat, status):
    assert receipt_status(stat) == status


def test_canonical_id():
    assert canonical_id("1A", "hex") == canonical_id("26", "dec") == "26"
    assert canonical_id("0001a", "hex") == canonical_id("000026", "dec")
    assert canonical_id(" 483D47F1\x00", "hex") == str(0x483D47F1)
    assert canonical_id(" abc-1 ", "str") == "abc-1"
    assert canonical_id("007", "str") == "007"


@pytest.mark.parametrize(
    ("message_id", "base"),
    [("1G", "hex"), ("1A", "dec"), ("", "dec"), ("0x1A", "hex"), ("-5", "dec"), ("1_0", "dec"),
     ("  ", "str"), ("1", "oct")],
)
def test_canonical_id_rejects_what_is_not_in_its_base(message_id, base):
    with pytest.raises(ValueError):
        canonical_id(message_id, base)


@given(st.integers(min_value=0, max_value=2**80))
def test_hex_and_decimal_ids_meet(number):
    assert canonical_id(f"{number:X}", "hex") == canonical_id(f"{number:020d}", "dec")


ids = st.text(alphabet="0123456789abcdefABCDEF-", min_size=1, max_size=30)
minutes = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2068, 12, 31)).map(
    lambda moment: moment.replace(second=0, microsecond=0)
)
counts = st.from_regex(r"[0-9]{3}", fullmatch=True)
free_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20
).map(str.strip)


@given(
    ids,
    st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "UNKNOWN", "ENROUTE",
                     "DELETED"]),
    st.none() | counts,
    st.none() | minutes,
    st.none() | minutes,
    st.none() | counts,
    st.none() | counts,
    st.none() | free_text,
)
def test_format_then_parse(message_id, stat, err, submit, done, sub, dlvrd, text):
    receipt = Receipt(message_id, stat, err, submit, done, sub, dlvrd, text)
    assert parse_receipt(format_receipt(receipt), {}) == receipt


@given(ids, st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2068, 12, 31)))
def test_format_with_seconds(message_id, moment):
    moment = moment.replace(microsecond=0)
    receipt = Receipt(message_id, "DELIVRD", "000", moment, moment, "001", "001", "hi")
    assert parse_receipt(format_receipt(receipt, seconds=True), {}) == receipt
