"""The session decides every protocol answer as each PDU is parsed (issue 8, point 14). No sockets."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smpp.pdu import (
    COMMANDS,
    ESME_RINVCMDID,
    ESME_RINVPASWD,
    ESME_ROK,
    ESME_RX_T_APPN,
    encode,
    generic_nack,
    request,
    response,
)
from gateway.smpp.session import (
    BINDING,
    BOUND,
    CLOSED,
    CONNECTED,
    OPEN,
    Close,
    Deliver,
    Expired,
    Refused,
    Send,
    Session,
    Settled,
    Stray,
)

MO = dict(source_addr="12125550199", destination_addr="12125550101", short_message=b"hello")


def binding(bind: str = "transceiver") -> tuple[Session, int]:
    """A session that sent its bind; the bind's sequence number."""
    session = Session(bind, 5)
    session.handle(CONNECTED)
    pending, pdu = session.request(f"bind_{bind}", 0, 10, "bind", system_id="didchat", password="secret")
    assert session.state == BINDING and pdu.fields["password"] == "secret"
    return session, pending.sequence


def bind_resp(bind: str, sequence: int, status: int = ESME_ROK) -> bytes:
    return encode(response(request(f"bind_{bind}", sequence), status, system_id="smsc"))


def bound(bind: str = "transceiver") -> Session:
    session, sequence = binding(bind)
    session.receive_data(bind_resp(bind, sequence), 0)
    assert session.state == BOUND
    return session


def of(kind, events):
    return [event for event in events if isinstance(event, kind)]


def test_a_deliver_sm_in_the_same_read_as_bind_resp_is_handed_over_not_refused():
    session, sequence = binding()
    chunk = bind_resp("transceiver", sequence) + b"".join(
        encode(request("deliver_sm", 100 + n, **MO)) for n in range(3))
    events = session.receive_data(chunk, 0)
    assert [type(e) for e in events] == [Settled, Deliver, Deliver, Deliver]
    assert events[0].pending.token == "bind" and session.state == BOUND and session.bind_status == ESME_ROK
    assert [e.pdu.sequence for e in events[1:]] == [100, 101, 102]
    assert session.answer(events[1].pdu, ESME_ROK) == response(events[1].pdu)


def test_a_bind_resp_split_across_reads_binds_when_its_last_octet_comes():
    session, sequence = binding()
    data = bind_resp("transceiver", sequence) + encode(request("deliver_sm", 7, **MO))
    assert session.receive_data(data[:5], 0) == [] and session.state == BINDING
    events = session.receive_data(data[5:], 0)
    assert [type(e) for e in events] == [Settled, Deliver]


def test_a_refused_bind_returns_to_open_with_its_status():
    session, sequence = binding()
    [settled] = session.receive_data(bind_resp("transceiver", sequence, ESME_RINVPASWD), 0)
    assert isinstance(settled, Settled) and session.state == OPEN and session.bind_status == ESME_RINVPASWD


def test_a_generic_nack_to_the_bind_fails_it():
    session, sequence = binding()
    session.receive_data(encode(generic_nack(sequence, 0)), 0)
    assert session.state == OPEN and session.bind_status != ESME_ROK


@pytest.mark.parametrize("bind, command", [
    ("transmitter", "deliver_sm"),  # the SMSC should deliver on the receiver bind: it may, later
    ("transceiver", "data_sm"),
])
def test_a_legal_message_that_cannot_be_taken_now_gets_a_temporary_status(bind, command):
    session = bound(bind) if bind == "transmitter" else binding(bind)[0]
    pdu = request(command, 9, **({} if command == "data_sm" else MO))
    [refused] = session.receive(pdu, 0)
    assert isinstance(refused, Refused) and refused.answer == response(pdu, ESME_RX_T_APPN)


def test_a_message_while_unbinding_gets_a_temporary_status():
    session = bound()
    session.request("unbind", 0, 10)
    [refused] = session.receive(request("deliver_sm", 4, **MO), 0)
    assert refused.answer.status == ESME_RX_T_APPN


def test_enquire_link_is_answered_by_the_session():
    session = bound()
    pdu = request("enquire_link", 3)
    assert session.receive(pdu, 0) == [Send(response(pdu))]


def test_unbind_from_the_smsc_is_answered_then_the_link_closes():
    session = bound()
    pdu = request("unbind", 5)
    assert session.receive(pdu, 0) == [Send(response(pdu)), Close("unbound by the SMSC")]
    assert session.state == CLOSED
    assert session.answer(request("deliver_sm", 6, **MO), ESME_ROK) is None  # nothing after the end


def test_our_unbind_answered_closes_the_link():
    session = bound()
    pending, pdu = session.request("unbind", 0, 10)
    events = session.receive(response(pdu), 0)
    assert [type(e) for e in events] == [Settled, Close] and session.state == CLOSED


def test_a_command_an_esme_never_takes_gets_generic_nack_invcmdid():
    session = bound()
    [refused] = session.receive(request("submit_sm", 8), 0)
    assert refused.answer == generic_nack(8, ESME_RINVCMDID)


def test_alert_notification_is_taken_without_an_answer():
    session = bound()
    assert session.receive(request("alert_notification", 2), 0) == []


def test_undecodable_and_unframeable_bytes():
    session = bound()
    unknown = (16).to_bytes(4, "big") + (0x00000777).to_bytes(4, "big") + bytes(4) + (12).to_bytes(4, "big")
    [refused] = session.receive_data(unknown, 0)
    assert refused.answer == generic_nack(12, ESME_RINVCMDID)
    events = session.receive_data(b"\xff\xff\xff\xff" + bytes(12), 0)
    assert isinstance(events[-1], Close) and events[-1].reason == "framing lost"


def test_a_response_to_nothing_in_flight_is_stray():
    session = bound()
    pdu = response(request("submit_sm", 77), ESME_ROK, message_id="x")
    assert session.receive(pdu, 0) == [Stray(pdu)]


def test_missed_keepalive_or_three_misses_in_a_row_close_the_link():
    session = bound()
    session.request("enquire_link", 0, 1)
    events = session.expire(1)
    assert [type(e) for e in events] == [Expired, Close]
    session = bound()
    for n in range(3):
        session.request("submit_sm", n, 1)
    events = session.expire(5)
    assert [type(e) for e in events] == [Expired, Expired, Expired, Close]


def test_an_answer_in_time_resets_the_missed_count():
    session = bound()
    session.request("submit_sm", 0, 1)
    second, pdu = session.request("submit_sm", 0, 10)
    session.expire(1)
    session.receive(response(pdu, message_id="1"), 1)
    assert session.missed == 0


def test_the_password_is_not_in_a_pdus_repr():
    pdu = request("bind_transceiver", 1, system_id="didchat", password="s3cr3t")
    assert "s3cr3t" not in repr(pdu) and "didchat" in repr(pdu)


REQUESTS = sorted(c for c in COMMANDS if not c.endswith("_resp") and c != "generic_nack")
FIELDS = {"query_sm": {"message_id": "1"}}  # smpplib will not encode it without


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(REQUESTS), st.integers(1, 0x7FFFFFFF)), max_size=12),
       st.lists(st.integers(1, 400), max_size=6), st.sampled_from(["transceiver", "transmitter", "receiver"]))
def test_every_request_is_answered_or_handed_over_once_however_the_reads_fall(requests, cuts, bind):
    session, sequence = binding(bind)
    data = bind_resp(bind, sequence) + b"".join(encode(request(c, s, **FIELDS.get(c, {}))) for c, s in requests)
    chunks, start = [], 0
    for cut in sorted(cuts):
        chunks.append(data[start:cut])
        start = max(start, cut)
    chunks.append(data[start:])
    events = [event for chunk in chunks for event in session.receive_data(chunk, 0)]
    assert isinstance(events[0], Settled)
    answered = [e.pdu.sequence for e in events if isinstance(e, (Send, Deliver))]
    answered += [e.sequence for e in events if isinstance(e, Refused) and e.answer is not None]
    assert sorted(answered) == sorted(s for c, s in requests if c != "alert_notification")


def test_tick_sends_enquire_link_every_keepalive_and_says_when_to_look_again():
    session = Session("transceiver", 5, keepalive=30, response_timeout=10)
    session.handle(CONNECTED)
    assert session.tick(0) == [] and session.next_deadline() == 30
    [send] = session.tick(30)
    assert send.pdu.command == "enquire_link" and session.next_deadline() == 40  # its answer is due first
    session.receive(response(send.pdu), 31)
    assert session.next_deadline() == 60 and session.tick(59) == []
    events = session.tick(60)
    assert [type(e) for e in events] == [Send] and [type(e) for e in session.tick(70)] == [Expired, Close]
