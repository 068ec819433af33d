"""A database outage does not end the workers: the outbox scan fails, logs, and tries again
(before, its task died on the first failed read and retries were never sent until a restart)."""
from __future__ import annotations

import contextlib
import time

import sqlalchemy.exc

from tests.conftest import ALICE, CUSTOMER


class Outage:
    """The store as a worker sees it, with reads failing until `ends_at` (a database that went away)."""

    def __init__(self, db, seconds: float):
        self.db, self.ends_at, self.failed = db, time.monotonic() + seconds, 0

    def __getattr__(self, name):
        return getattr(self.db, name)

    @contextlib.asynccontextmanager
    async def read(self):
        if time.monotonic() < self.ends_at:
            self.failed += 1
            raise sqlalchemy.exc.OperationalError("SELECT", {}, ConnectionRefusedError("the database went away"))
        async with self.db.read() as conn:
            yield conn


async def test_the_outbox_sends_its_retries_after_a_database_outage(didchat_server):
    alice = await didchat_server.connect("alice")
    await didchat_server.simulate_sms(CUSTOMER, ALICE, "hi")
    [msg] = await alice.wait_messages(1)
    outbox = didchat_server.services.outbox
    outbox.db = outage = Outage(outbox.db, seconds=0.5)  # the retry below falls due during the outage
    didchat_server.twilio_api.fail_next(1, status=500)
    sent = await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "through it", "client_id": "o1"})
    assert sent["ok"], sent
    requests = await didchat_server.twilio_api.wait_for_requests(2, timeout=10)
    assert [r["Body"] for r in requests] == ["through it", "through it"] and outage.failed >= 1
