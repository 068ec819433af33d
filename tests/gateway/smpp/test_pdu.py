"""PDUs on smpplib's codec: framing, round trips, smpplib's traps, garbage."""
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.pdu import (
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVOPTPARSTREAM,
    TEMPORARY_STATUSES,
    BadPdu,
    Framer,
    Pdu,
    PduError,
    decode,
    encode,
    generic_nack,
    request,
    response,
    status_name,
)

# A deliver_sm as a real SMSC sent it (hex dump): 447700900123 -> 447700900456 "Hello" + receipted_message_id.
DELIVER_HEX = (
    "00000046000000050000000000000002"  # header: length 70, deliver_sm, ROK, sequence 2
    "00" "0101" "34343737303039303031323300" "0101" "34343737303039303034353600"
    "04" "00" "00" "00" "00" "00" "00" "00" "00" "05" "48656c6c6f"
    "001e0004" "61626300"  # receipted_message_id "abc"
)


def submit(sequence: int = 1, **fields) -> Pdu:
    return request("submit_sm", sequence, source_addr="1234", destination_addr="5678",
                   short_message=b"hi", **fields)


def test_status_names_come_from_smpplib():
    assert status_name(0x58) == "ESME_RTHROTTLED"
    assert status_name(0x0E) == "ESME_RINVPASWD"
    assert status_name(0) == "ESME_ROK"
    assert status_name(0x400) == "0x00000400"


def test_temporary_statuses_are_the_conventions_list():
    assert TEMPORARY_STATUSES == {0x58, 0x08, 0x14, 0x45, 0x67, 0xFE, 0xFF, 0x64}


def test_recorded_deliver_sm_decodes():
    pdu = decode(bytes.fromhex(DELIVER_HEX.replace(" ", "")))
    assert isinstance(pdu, Pdu)
    assert (pdu.command, pdu.sequence, pdu.status) == ("deliver_sm", 2, 0)
    assert pdu.fields["source_addr"] == "447700900123"
    assert pdu.fields["destination_addr"] == "447700900456"
    assert (pdu.fields["esm_class"], pdu.fields["short_message"]) == (4, b"Hello")
    assert pdu.tlvs == {"receipted_message_id": "abc"}


def test_request_keeps_its_sequence_and_response_echoes_it():
    # smpplib ignores sequence= when building and takes one from its client when parsing.
    pdu = decode(encode(submit(sequence=4242)))
    assert pdu.sequence == 4242
    answer = decode(encode(response(pdu, message_id="abc")))
    assert (answer.command, answer.sequence, answer.fields["message_id"]) == ("submit_sm_resp", 4242, "abc")


def test_error_response_keeps_its_status():
    answer = decode(encode(response(submit(sequence=9), 0x58)))
    assert (answer.status, answer.sequence) == (0x58, 9)


def test_generic_nack_round_trip():
    assert decode(encode(generic_nack(77, ESME_RINVCMDID))) == Pdu("generic_nack", 77, ESME_RINVCMDID)


def test_bind_round_trip():
    bind = request("bind_transceiver", 1, system_id="didchat", password="secret", address_range="^1")
    assert decode(encode(bind)) == bind


def test_framer_splits_merged_and_joins_split_bytes():
    one, two = encode(submit(1)), encode(submit(2))
    framer = Framer()
    stream = one + two + one
    seen = []
    for i in range(0, len(stream), 7):
        seen += framer.feed(stream[i:i + 7])
    assert [p.sequence for p in seen] == [1, 2, 1]
    assert Framer().feed(one + two) == [decode(one), decode(two)]
    assert Framer().feed(one[:15]) == []


@pytest.mark.parametrize("length", [0, 5, 15, 70_000, 0xFFFFFFFF])
def test_framer_reports_a_bad_length_once_and_stops(length):
    framer = Framer()
    good = encode(submit(3))
    out = framer.feed(good + struct.pack(">LLLL", length, 4, 0, 55) + good)
    assert out[0] == decode(good)
    assert isinstance(out[1], BadPdu) and out[1].fatal and out[1].status == ESME_RINVCMDLEN
    assert out[1].sequence == 55 and len(out) == 2
    assert framer.broken and framer.feed(good) == []


def test_unknown_command_is_reported_and_the_stream_goes_on():
    framer = Framer()
    out = framer.feed(struct.pack(">LLLL", 16, 0x00000777, 0, 12) + encode(submit(13)))
    assert isinstance(out[0], BadPdu) and not out[0].fatal
    assert (out[0].status, out[0].sequence) == (ESME_RINVCMDID, 12)
    assert out[1].sequence == 13


@pytest.mark.parametrize("body", [
    b"abc",  # C-string without NUL
    b"\0\1\1123\0\1\1456\0" + bytes(8) + b"\x05hi",  # short_message shorter than sm_length
    bytes.fromhex("00 0000 00 0000 00") + bytes(10) + bytes.fromhex("0424 0005 6869"),  # TLV runs past the end
    bytes(17) + b"\x00\x1e\x00",  # truncated TLV header
])
def test_corrupt_bodies_become_bad_pdus(body):
    frame = struct.pack(">LLLL", 16 + len(body), 4, 0, 8) + body
    bad = decode(frame)
    assert isinstance(bad, BadPdu) and not bad.fatal and bad.sequence == 8
    assert bad.status == ESME_RINVOPTPARSTREAM


def test_unknown_tlv_tags_are_kept_raw():
    frame = encode(submit(5))
    frame = struct.pack(">L", len(frame) + 6) + frame[4:] + bytes.fromhex("1403 0002 beef")
    assert decode(frame).tlvs == {"0x1403": b"\xbe\xef"}


def test_integer_tlv_length_comes_from_the_wire():
    # smpplib would read 2 octets for source_addr_subunit in submit_sm; the wire says 1.
    frame = encode(submit(5))
    frame = struct.pack(">L", len(frame) + 5) + frame[4:] + bytes.fromhex("000d 0001 02")
    assert decode(frame).tlvs == {"source_addr_subunit": 2}


@pytest.mark.parametrize("fields, tlvs, where", [
    ({"source_addr": "1" * 21}, {}, "submit_sm.source_addr"),
    ({"short_message": b"x" * 255}, {}, "submit_sm.short_message"),
    ({"esm_class": 256}, {}, "submit_sm.esm_class"),
    ({"source_addr": "é"}, {}, "submit_sm.source_addr"),
    ({}, {"sar_msg_ref_num": 70_000}, "submit_sm.sar_msg_ref_num"),
    ({}, {"no_such_tlv": 1}, "no_such_tlv"),
])
def test_encode_names_the_field_that_does_not_fit(fields, tlvs, where):
    pdu = Pdu("submit_sm", 1, 0, {**submit().fields, **fields}, tlvs)
    with pytest.raises(PduError, match=where):
        encode(pdu)


def test_request_refuses_unknown_mandatory_fields():
    with pytest.raises(PduError, match="message_payload"):
        request("submit_sm", 1, message_payload=b"x")


# -- property tests --------------------------------------------------------------------------

addresses = st.text("0123456789+", max_size=20)
octet = st.integers(0, 255)
short_strings = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=15)
tlvs = st.fixed_dictionaries({}, optional={
    "message_payload": st.binary(max_size=600),
    "sar_msg_ref_num": st.integers(0, 0xFFFF),
    "sar_total_segments": octet,
    "sar_segment_seqnum": octet,
    "user_message_reference": st.integers(0, 0xFFFF),
    "source_port": st.integers(0, 0xFFFF),
    "language_indicator": octet,
    "receipted_message_id": short_strings,
    "message_state": octet,
    "network_error_code": st.binary(min_size=3, max_size=3),
})
SUBMIT_ONLY = {"receipted_message_id", "message_state", "network_error_code"}


def message(command: str):
    return st.builds(
        lambda seq, src, dst, ton, npi, esm, dcs, sm, extra, reg: request(
            command, seq,
            extra if command == "deliver_sm" else {k: v for k, v in extra.items() if k not in SUBMIT_ONLY},
            source_addr=src, destination_addr=dst, source_addr_ton=ton, source_addr_npi=npi,
            dest_addr_ton=ton, dest_addr_npi=npi, esm_class=esm, data_coding=dcs, short_message=sm,
            registered_delivery=reg, service_type="CMT"[:seq % 4]),
        st.integers(1, 0x7FFFFFFF), addresses, addresses, octet, octet, octet, octet,
        st.binary(max_size=254), tlvs, octet)


@given(st.one_of(message("submit_sm"), message("deliver_sm")))
def test_encode_then_decode_is_identity(pdu):
    assert decode(encode(pdu)) == pdu


@given(st.lists(message("submit_sm"), min_size=1, max_size=5), st.lists(st.integers(1, 60), max_size=20))
def test_any_split_of_a_stream_yields_the_same_pdus(pdus, cuts):
    stream = b"".join(encode(p) for p in pdus)
    framer, out, pos = Framer(), [], 0
    for cut in cuts:
        out += framer.feed(stream[pos:pos + cut])
        pos += cut
    out += framer.feed(stream[pos:])
    assert out == pdus


@given(st.binary(max_size=300))
def test_garbage_never_raises(data):
    for item in Framer().feed(data):
        assert isinstance(item, Pdu | BadPdu)
    assert isinstance(decode(struct.pack(">L", 16 + len(data)) + bytes.fromhex("00000005 00000000 00000001") + data),
                      Pdu | BadPdu)


# -- our parse loop against smpplib's own Command.parse ----------------------------------------

def smpplib_body(name: str, frame: bytes):
    """What smpplib's Command.parse reads of a frame's mandatory fields and TLVs, as decode returns them (the
    way gateway.smpp.pdu read them before its own loop), or "refused"."""
    from smpplib import smpp

    from gateway.smpp.pdu import _Throwaway, defaults, parse_tlvs

    parsed = smpp.make_pdu(name, client=_Throwaway())
    parsed.params_order = tuple(f for f in type(parsed).params_order if not parsed.field_is_optional(f))
    tlvs: dict = {}
    parsed.parse_optional_params = lambda data: tlvs.update(parse_tlvs(data))

    def strict_string(field, data, pos, length=None):  # smpplib wraps around a C-string with no NUL
        if length is None and data.find(b"\0", pos) < 0:
            raise ValueError(f"{field}: no NUL")
        return type(parsed)._parse_string(parsed, field, data, pos, length)

    parsed._parse_string = strict_string
    try:
        parsed.parse(frame)
    except (ValueError, struct.error, UnicodeDecodeError):
        return "refused"
    if len(getattr(parsed, "short_message", None) or b"") != (getattr(parsed, "sm_length", None) or 0):
        return "refused"
    fields = defaults(name)
    for key in fields:
        value = getattr(parsed, key, None)
        if isinstance(value, bytes) and isinstance(fields[key], str):
            value = value.decode("latin-1")
        if value is not None:
            fields[key] = value
    return fields, tlvs


def ours(frame: bytes):
    decoded = decode(frame)
    if isinstance(decoded, BadPdu):
        return "refused"
    return dict(decoded.fields), dict(decoded.tlvs)


@given(st.one_of(message("submit_sm"), message("deliver_sm")), st.integers(16, 700), st.binary(max_size=8))
def test_fields_are_read_as_smpplib_reads_them_whole_or_cut_or_padded(pdu, cut, tail):
    """Any frame of a deliver_sm or submit_sm, cut anywhere or with bytes after it, reads the same."""
    whole = encode(pdu)
    body = (whole[:cut] if cut < len(whole) else whole + tail)[16:]
    frame = struct.pack(">L", 16 + len(body)) + whole[4:16] + body
    assert ours(frame) == smpplib_body(pdu.command, frame)


@given(st.sampled_from(["deliver_sm", "submit_sm", "data_sm", "bind_transceiver", "submit_sm_resp",
                        "deliver_sm_resp", "enquire_link", "unbind"]), st.binary(max_size=120))
def test_any_body_of_any_command_reads_as_smpplib_reads_it(name, body):
    from smpplib.command_codes import get_command_code

    frame = struct.pack(">LLLL", 16 + len(body), get_command_code(name), 0, 1) + body
    assert ours(frame) == smpplib_body(name, frame)
