"""The pure bind session and submit queue: state table, sequences, window, deadlines, matching,
order, pauses, rate. No sockets."""
import pytest

from gateway.smpp.pdu import MAX_SEQUENCE, Pdu, generic_nack, request, response
from gateway.smpp.session import (
    BIND_FAILED,
    BIND_OK,
    BIND_SENT,
    BOUND,
    CLOSED,
    CONNECTED,
    LINK_LOST,
    OPEN,
    TRANSITIONS,
    UNBIND_RECEIVED,
    UNBIND_SENT,
    UNBINDING,
    UNBOUND,
    ProtocolError,
    Session,
)


def bound(bind: str = "transceiver", window: int = 3) -> Session:
    session = Session(bind, window)
    for event in (CONNECTED, BIND_SENT, BIND_OK):
        session.handle(event)
    return session


def answer(pending, status: int = 0) -> Pdu:
    return response(request(pending.command, pending.sequence), status)


@pytest.mark.parametrize("events, end", [
    ([CONNECTED, BIND_SENT, BIND_OK], BOUND),
    ([CONNECTED, BIND_SENT, BIND_FAILED], OPEN),
    ([CONNECTED, BIND_SENT, BIND_OK, UNBIND_SENT, UNBOUND], CLOSED),
    ([CONNECTED, BIND_SENT, BIND_OK, UNBIND_RECEIVED, UNBOUND], CLOSED),
    ([CONNECTED, BIND_SENT, BIND_OK, UNBIND_SENT, UNBIND_RECEIVED], UNBINDING),
    ([CONNECTED, BIND_SENT, BIND_OK, LINK_LOST], CLOSED),
    ([CONNECTED, LINK_LOST], CLOSED),
])
def test_state_table_paths(events, end):
    session = Session()
    for event in events:
        session.handle(event)
    assert session.state == end


def test_every_state_survives_a_lost_link():
    assert all(LINK_LOST in TRANSITIONS[state] for state in TRANSITIONS)


@pytest.mark.parametrize("events, bad", [
    ([], BIND_SENT), ([CONNECTED], BIND_OK), ([CONNECTED, BIND_SENT], UNBIND_SENT),
])
def test_events_outside_the_table_are_protocol_errors(events, bad):
    session = Session()
    for event in events:
        session.handle(event)
    with pytest.raises(ProtocolError, match=bad):
        session.handle(bad)


def test_what_may_be_sent_and_received_depends_on_bind_and_state():
    tx, rx, trx = bound("transmitter"), bound("receiver"), bound("transceiver")
    assert tx.may_send("submit_sm") and not rx.may_send("submit_sm") and trx.may_send("submit_sm")
    assert not tx.may_receive("deliver_sm") and rx.may_receive("deliver_sm") and trx.may_receive("deliver_sm")
    opened = Session()
    opened.handle(CONNECTED)
    assert opened.may_send("bind_transceiver") and not opened.may_send("submit_sm")
    assert not opened.may_receive("deliver_sm")
    with pytest.raises(ProtocolError):
        opened.start("submit_sm", 0, 1)


def test_sequences_run_from_one_and_wrap_below_2_to_the_31():
    session = bound()
    assert [session.next_sequence() for _ in range(3)] == [1, 2, 3]
    session._last_sequence = MAX_SEQUENCE - 1
    assert [session.next_sequence() for _ in range(3)] == [MAX_SEQUENCE, 1, 2]


def test_sequences_skip_numbers_still_in_flight():
    session = bound()
    first = session.start("submit_sm", 0, 10)
    session._last_sequence = MAX_SEQUENCE
    assert first.sequence == 1 and session.next_sequence() == 2


def test_window_counts_messages_only():
    session = bound(window=2)
    session.start("submit_sm", 0, 10)
    session.start("submit_sm", 0, 10)
    assert not session.has_room and session.in_flight == 2
    session.start("enquire_link", 0, 10)  # link upkeep does not wait for the window
    with pytest.raises(ProtocolError, match="window"):
        session.start("submit_sm", 0, 10)


def test_responses_settle_their_request_and_free_the_window():
    session = bound(window=1)
    pending = session.start("submit_sm", 0, 10, token="job")
    assert session.settle(answer(pending)).token == "job"
    assert session.has_room and session.pending() == []


def test_unknown_or_mismatched_responses_are_not_matched():
    session = bound()
    pending = session.start("submit_sm", 0, 10)
    assert session.settle(response(request("submit_sm", pending.sequence + 1))) is None
    assert session.settle(response(request("enquire_link", pending.sequence))) is None
    assert session.in_flight == 1


def test_generic_nack_settles_by_sequence():
    session = bound()
    pending = session.start("submit_sm", 0, 10)
    assert session.settle(generic_nack(pending.sequence, 3)) is pending
    assert session.settle(generic_nack(0, 3)) is None


def test_expired_returns_late_requests_oldest_first():
    session = bound()
    late = session.start("submit_sm", 0, 5)
    early = session.start("submit_sm", 1, 2)
    kept = session.start("enquire_link", 1, 30)
    assert session.expired(2.9) == []
    assert session.expired(3.0) == [early]
    assert session.expired(10) == [late]
    assert session.pending() == [kept]


def test_abandon_returns_everything_in_flight():
    session = bound()
    started = [session.start("submit_sm", 0, 5), session.start("enquire_link", 0, 5)]
    assert session.abandon() == started and session.in_flight == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="bind"):
        Session("trx")
    with pytest.raises(ValueError, match="window"):
        Session("transceiver", 0)
