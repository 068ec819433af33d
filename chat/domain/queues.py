"""The depth of the workers' queues in the store, for the operator's view (/metrics)."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from chat.store.tables import crm_outbox, outbox

QUEUES = {"outbox": outbox, "crm_outbox": crm_outbox}


async def queue_depths(conn) -> dict[str, tuple[int, datetime | None]]:
    """Each queue's row count and when its oldest row was queued."""
    out = {}
    for name, table in QUEUES.items():
        row = (await conn.execute(sa.select(sa.func.count(), sa.func.min(table.c.created_at)).select_from(table))).one()
        out[name] = (row[0], row[1])
    return out
