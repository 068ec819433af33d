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
    DONE,
    FAIL,
    LINK_LOST,
    MAX_PAUSE_FACTOR,
    OPEN,
    RETRY,
    TRANSITIONS,
    UNBIND_RECEIVED,
    UNBIND_SENT,
    UNBINDING,
    UNBOUND,
    ProtocolError,
    Session,
    SubmitQueue,
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


# -- the submit queue ---------------------------------------------------------------------------

def test_queue_sends_in_arrival_order_within_the_window():
    queue, session = SubmitQueue(), bound(window=2)
    for name in "abc":
        queue.push(name)
    assert queue.delay(0, session) == 0
    sent = []
    while queue.delay(0, session) == 0:
        queued = queue.pop(0)
        session.start("submit_sm", 0, 10, queued)
        sent.append(queued.token)
    assert sent == ["a", "b"] and queue.delay(0, session) is None  # window full


def test_retryable_answer_requeues_in_place_pauses_and_probes():
    queue, session = SubmitQueue(throttle_pause=1.0, retries=3), bound(window=5)
    first, second = queue.push("a"), queue.push("b")
    for queued in (queue.pop(0), queue.pop(0)):
        session.start("submit_sm", 0, 10, queued)
    assert queue.answered(first, 0x58, now=0.1) == RETRY
    assert queue.answered(second, 0x58, now=0.1) == RETRY  # same burst: no second pause
    session.abandon()
    assert queue.paused_until == pytest.approx(1.1) and queue.delay(0.5, session) == pytest.approx(0.6)
    probe = queue.pop(1.1)
    assert probe is first and probe.attempts == 1
    session.start("submit_sm", 1.1, 10, probe)
    assert queue.delay(1.2, session) is None  # probing: one alone
    assert queue.answered(probe, 0x58, now=1.2) == RETRY  # a new burst doubles the pause
    assert queue.paused_until == pytest.approx(3.2)
    session.abandon()
    probe = queue.pop(3.2)
    assert queue.answered(probe, 0, now=3.3) == DONE and not queue.probing
    assert queue.delay(3.3, session) == 0 and queue.pop(3.3) is second


def test_retries_are_bounded_and_other_statuses_fail_at_once():
    queue = SubmitQueue(throttle_pause=0.1, retries=1)
    queued = queue.push("a")
    queue.pop(0)
    assert queue.answered(queued, 0x14, now=0) == RETRY
    queue.pop(1)
    assert queue.answered(queued, 0x14, now=1) == FAIL
    other = queue.push("b")
    queue.pop(2)
    assert queue.answered(other, 0x0B, now=2) == FAIL
    assert queue.answered(other, 0x58, now=2, retry=False) == FAIL


def test_rate_limit_spaces_sends():
    queue, session = SubmitQueue(rate_limit=10), bound(window=10)
    for name in "abc":
        queue.push(name)
    queue.pop(0)
    assert queue.delay(0, session) == pytest.approx(0.1)
    queue.pop(0.1)
    assert queue.delay(0.15, session) == pytest.approx(0.05)


def test_pauses_are_capped():
    queue = SubmitQueue(throttle_pause=1.0, retries=100)
    queued = queue.push("a")
    now = 0.0
    for _ in range(10):
        queue.pop(now)
        queue.answered(queued, 0x58, now)
        pause, now = queue.paused_until - now, queue.paused_until
    assert pause == MAX_PAUSE_FACTOR


def test_drain_and_discard():
    queue = SubmitQueue()
    for name in "abc":
        queue.push(name)
    queue.discard(lambda queued: queued.token == "a")
    assert [q.token for q in queue.drain()] == ["b", "c"] and len(queue) == 0
