"""Rows of work claimed by one node at a time (units of work: the same statements on both databases).

Rules:
- A claim is a lease on a row: who holds it (`claimed_by`, for people reading the table), until
  when (`claimed_until`) and its fencing token (`claim_token`: the claim's random token and the
  row's id, so one per row and per claim). A row is free when it was never claimed or its lease
  lapsed: a node that died holds nothing after `cluster.claim_seconds`; a live node renews what it
  still works on (`renew`) and releases what it let go (`release`).
- Claiming is one statement, UPDATE ... WHERE id IN (SELECT id ... FOR UPDATE SKIP LOCKED)
  RETURNING: two nodes never take one row (a row another transaction is claiming is skipped; once
  committed, its lease is not free). SQLite ignores the locking clause: one process, and its write
  transactions are exclusive anyway. A claim of the one row a key names (a conversation's next
  head, `claim_one_statement`) is a plain UPDATE ... WHERE: a row another transaction is claiming
  is waited for, then no longer free; the same outcome, without a pick PostgreSQL would re-run.
- What a claim allows (recording the outcome, backing off, releasing) is done only where the row
  still has the claim's token (`held`): a node whose lease lapsed and was taken over records nothing.
- `take_statement` deletes the rows it picks and returns them, for work done in that same
  transaction (expiring SMPP parts): once across the cluster, with no lease at all.
"""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
import structlog

from chat.store import utcnow

log = structlog.get_logger()

UNCLAIMED = {"claimed_by": None, "claimed_until": None, "claim_token": None}


@dataclass(frozen=True)
class Claim:
    """One claim: its holder, token and lease, as the parameters of a claim statement."""

    holder: str
    token: str
    now: datetime
    until: datetime

    @classmethod
    def new(cls, holder: str, seconds: float) -> Claim:
        now = utcnow()
        return cls(holder, secrets.token_hex(8), now, now + timedelta(seconds=seconds))

    def params(self) -> dict:
        return {"holder": self.holder, "token": self.token, "now": self.now, "until": self.until}


def free(table: sa.Table, now=None):
    """Rows nobody holds now (parameter `now` unless given)."""
    now = sa.bindparam("now") if now is None else now
    return sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)


def held(table: sa.Table, token=None):
    """The row still has this claim's token (parameter `token` unless given)."""
    return table.c.claim_token == (sa.bindparam("token") if token is None else token)


def claim_statement(table: sa.Table, where, *, order_by, limit: int):
    """Claim the first `limit` free rows matching `where`, skipping rows another transaction holds;
    returns (id, claim_token) of each. Parameters: those of Claim.params() and of `where`."""
    picked = (sa.select(table.c.id).where(where, free(table)).order_by(*order_by).limit(limit)
              .with_for_update(skip_locked=True).correlate(None))
    return _claiming(table, table.c.id.in_(picked))


def claim_one_statement(table: sa.Table, where):
    """Claim the row `where` names, if it is free: `where` names one row at most (a conversation's head:
    its key, a `column == bindparam` term, first, so the store knows which rows it touches). A
    transaction holding that row is waited for, then the row is free or not. Not claim_statement's
    IN (SELECT ... LIMIT): over a batch's rows PostgreSQL ran that pick again for every row of the
    key (25 a conversation: 80 ms for 50 recorded sends; bench/README.md)."""
    return _claiming(table, sa.and_(where, free(table)))


def _claiming(table: sa.Table, condition):
    token = sa.bindparam("token", type_=sa.String) + ":" + sa.cast(table.c.id, sa.String)
    return (table.update().where(condition)
            .values(claimed_by=sa.bindparam("holder"), claimed_until=sa.bindparam("until"), claim_token=token)
            .returning(table.c.id, table.c.claim_token))


def take_statement(table: sa.Table, where, *, order_by, limit: int):
    """Delete the first `limit` rows matching `where` that no other transaction holds; returns them whole."""
    picked = (sa.select(table.c.id).where(where).order_by(*order_by).limit(limit)
              .with_for_update(skip_locked=True).correlate(None))
    return table.delete().where(table.c.id.in_(picked)).returning(*table.c)


async def claim(conn, table: sa.Table, where, claim: Claim, *, order_by, limit: int) -> list:
    """Claim up to `limit` free rows matching `where` (a statement built per call); their (id, claim_token)."""
    statement = claim_statement(table, where, order_by=order_by, limit=limit)
    return (await conn.execute(statement, claim.params())).all()


async def renew(conn, table: sa.Table, tokens: list[str], until: datetime) -> int:
    """Extend the lease of the rows these tokens still hold; how many."""
    if not tokens:
        return 0
    result = await conn.execute(table.update().where(table.c.claim_token.in_(tokens)).values(claimed_until=until))
    return result.rowcount


async def release(conn, table: sa.Table, tokens: list[str]) -> None:
    """Let go of the rows these tokens still hold: free at once, for any node."""
    if tokens:
        await conn.execute(table.update().where(table.c.claim_token.in_(tokens)).values(**UNCLAIMED))


async def release_all(conn, table: sa.Table) -> None:
    """Free every claim: for a store only one process uses (SQLite), whose claims all died with it."""
    await conn.execute(table.update().where(table.c.claim_token.is_not(None)).values(**UNCLAIMED))


class Holding:
    """The claims of one table this node works on now, renewed every `every` seconds until let go.

    `renew_unit(conn, tokens, until)` is the table's renew (e.g. chat.domain.outbox.renew_claims).
    """

    def __init__(self, commit, renew_unit, seconds: float, every: float):
        self.commit, self._renew, self.seconds, self.every = commit, renew_unit, seconds, every
        self.tokens: set[str] = set()

    def claim(self, holder: str) -> Claim:
        return Claim.new(holder, self.seconds)

    async def keep(self) -> None:
        """Renew what is held, for as long as the worker runs; a failed renewal is tried again next time."""
        while True:
            await asyncio.sleep(self.every)
            if not self.tokens:
                continue
            until = utcnow() + timedelta(seconds=self.seconds)
            try:
                await self.commit.run(partial(self._renew, tokens=sorted(self.tokens), until=until))
            except Exception as err:  # noqa: BLE001 - a database outage: the leases may lapse, the rows stay
                log.warning("claims.renew_failed", error=type(err).__name__, held=len(self.tokens))
