"""Pacing of sends (units of work): a slot per send on each limit it falls under, the same on every node.

Rules: a send of N segments under a limit of R segments per second takes N / R seconds of that limit,
starting when the limit's previous send's time ends (or now, if that has passed); reserving updates
the limit's row first, so on PostgreSQL two nodes reserving on one limit queue on its row lock and
never get the same slot. A send waits for the latest of its slots. A limit's row is created by its
first send (a unit run again after two nodes created it at once finds it, chat.store.commit).
"""
from __future__ import annotations

import sqlalchemy as sa

from chat.store.tables import send_pace

_KEY = send_pace.c.key == sa.bindparam("k")
ADVANCE = send_pace.update().where(_KEY).values(
    next_us=sa.case((send_pace.c.next_us > sa.bindparam("now"), send_pace.c.next_us), else_=sa.bindparam("now"))
    + sa.bindparam("cost"))
READ = sa.select(send_pace.c.next_us).where(_KEY)
US = 1_000_000


async def reserve(conn, costs: tuple[tuple[str, float], ...], now: float) -> float:
    """Reserve a slot on each (limit key, seconds it costs); when the send may start (unix seconds)."""
    now_us, start = int(now * US), int(now * US)
    for key, seconds in costs:
        cost = max(1, round(seconds * US))
        if (await conn.execute(ADVANCE, {"k": key, "now": now_us, "cost": cost})).rowcount == 0:
            await conn.execute(send_pace.insert().values(key=key, next_us=now_us + cost))
            continue
        ends = await conn.scalar(READ, {"k": key})
        start = max(start, ends - cost)
    return start / US

