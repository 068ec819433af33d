"""The submit queue, without sockets and with a fake clock: order, pauses, their cap, rate."""
import heapq

import pytest

from gateway.smpp.pdu import request, response
from gateway.smpp.queue import DONE, FAIL, RETRY, SubmitQueue
from gateway.smpp.session import BIND_OK, BIND_SENT, CONNECTED, Session

ESME_RTHROTTLED = 0x58


def bound(bind: str = "transceiver", window: int = 3) -> Session:
    session = Session(bind, window)
    for event in (CONNECTED, BIND_SENT, BIND_OK):
        session.handle(event)
    return session


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
    queue, session = SubmitQueue(throttle_pause=1.0, retries=3, max_pause=5.0), bound(window=5)
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


def test_drain_and_discard():
    queue = SubmitQueue()
    for name in "abc":
        queue.push(name)
    queue.discard(lambda queued: queued.token == "a")
    assert [q.token for q in queue.drain()] == ["b", "c"] and len(queue) == 0


def test_pauses_double_and_are_capped_at_max_pause():
    queue = SubmitQueue(throttle_pause=1.0, retries=100, max_pause=5.0)
    queued = queue.push("a")
    now, pauses = 0.0, []
    for _ in range(10):
        queue.pop(now)
        queue.answered(queued, ESME_RTHROTTLED, now)
        pauses.append(queue.paused_until - now)
        now = queue.paused_until
    assert pauses == [1, 2, 4] + [5] * 7


def test_a_max_pause_below_the_first_pause_caps_it_too():
    queue = SubmitQueue(throttle_pause=2.0, max_pause=0.5)
    queue.push("a")
    queue.answered(queue.pop(0), ESME_RTHROTTLED, 0)
    assert queue.paused_until == 0.5


class FakeSmsc:
    """Answers each submit `rtt` seconds after it left; its first `throttles` answers are ESME_RTHROTTLED."""

    def __init__(self, throttles: int, rtt: float = 0.05):
        self.throttles, self.rtt = throttles, rtt
        self.sent: list[float] = []
        self._answers: list[tuple[float, int]] = []

    def submit(self, session: Session, queued, now: float) -> None:
        pending = session.start("submit_sm", now, 10, queued)
        self.sent.append(now)
        heapq.heappush(self._answers, (now + self.rtt, pending.sequence))

    def next_answer_at(self) -> float:
        return self._answers[0][0] if self._answers else float("inf")

    def answers_due(self, session: Session, now: float):
        """(the Queued answered, its status) for every answer due by `now`."""
        while self._answers and self._answers[0][0] <= now:
            _, sequence = heapq.heappop(self._answers)
            status = ESME_RTHROTTLED if self.throttles > 0 else 0
            self.throttles -= status != 0
            yield session.settle(response(request("submit_sm", sequence), status)).token, status


def drain(queue: SubmitQueue, messages: int, smsc: FakeSmsc, window: int = 10) -> tuple[float, dict]:
    """Run the queue against `smsc` on a fake clock until every message is answered for good."""
    session, outcomes, now = bound(window=window), {}, 0.0
    for n in range(messages):
        queue.push(n)
    while len(outcomes) < messages:
        while queue.delay(now, session) == 0:
            smsc.submit(session, queue.pop(now), now)
        wait = queue.delay(now, session)
        now = min(smsc.next_answer_at(), float("inf") if wait is None else now + wait)
        for queued, status in smsc.answers_due(session, now):
            outcome = queue.answered(queued, status, now)
            if outcome != RETRY:
                outcomes[queued.token] = outcome
    return now, outcomes


def test_twenty_throttles_in_a_row_drain_in_well_under_a_minute_with_defaults():
    queue = SubmitQueue()  # SmppConnector's defaults: throttle_pause 1 s, throttle_max_pause 1.5 s, 5 retries
    took, outcomes = drain(queue, 20, FakeSmsc(throttles=20))
    assert len(outcomes) == 20 and took < 30  # uncapped (32 x throttle_pause) this took 63 s
    assert list(outcomes.values()).count(DONE) >= 19  # the head, probing alone, may use up its retries


def test_the_rate_limit_holds_across_pauses():
    queue, smsc = SubmitQueue(rate_limit=10, throttle_pause=0.5), FakeSmsc(throttles=3)
    drain(queue, 10, smsc)
    gaps = [later - earlier for earlier, later in zip(smsc.sent, smsc.sent[1:])]
    assert min(gaps) >= 0.1 - 1e-9
