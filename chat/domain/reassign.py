"""Open conversations follow their number when the configuration moves it (units of work, at start).

Rules:
- A number whose owner changed (another user, or a team instead): with `conversations.on_number_reassign:
  move` (the default) its open and waiting conversations of the old owner go where the number's route
  now sends new ones (its user, waiting for them until they are ready; else its queue); with `keep`
  they stay with the old owner until closed.
- A conversation held by, or waiting for, a user who is no longer configured always moves the same
  way (whatever the rule): never orphaned. A note on each says where it came from.
- Run once at start, in the transaction that writes the configuration (chat.domain.directory): a
  second node starting with the same configuration finds nothing changed and moves nothing.
"""
from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from chat.domain.conversations import ACTIVE, append_message
from chat.domain.directory import ADMINS, Directory
from chat.store import utcnow
from chat.store.tables import conversations, users


async def follow_numbers(conn, directory: Directory, owner_was: Mapping[str, int | None], rule: str) -> int:
    """Move what must move (see Rules); how many conversations moved."""
    configured = set(directory.agents)
    changed = {n: old for n, old in owner_was.items() if old is not None and directory.route(n).user != old}
    holder = sa.func.coalesce(conversations.c.assigned_id, conversations.c.owner_id)
    gone = ~holder.in_(configured) if configured else sa.true()
    which = sa.and_(holder.is_not(None), gone)
    if rule == "move" and changed:
        which = sa.or_(which, *(sa.and_(conversations.c.access_number == n, holder == old) for n, old in changed.items()))
    rows = (await conn.execute(sa.select(conversations.c.id, conversations.c.access_number, holder.label("holder"))
                               .where(ACTIVE, which).order_by(conversations.c.id))).all()
    names = dict((await conn.execute(sa.select(users.c.id, sa.func.coalesce(users.c.display_name, users.c.name)))).all())
    now = utcnow()
    for row in rows:
        route = directory.route(row.access_number)
        if route.user is not None:
            values = {"owner_id": route.user, "assigned_id": None, "team": None, "state": "waiting"}
            label = names.get(route.user, "its new owner")
        else:
            values = {"owner_id": None, "assigned_id": None, "team": route.queue, "state": "waiting"}
            label = "the admins" if route.queue == ADMINS else f"queue {route.queue}"
        await conn.execute(conversations.update().where(conversations.c.id == row.id).values(**values, updated_at=now))
        await append_message(conn, row.id, direction="note", status="note", sender="", recipient="", connector="",
                             text=f"Moved from {names.get(row.holder, 'a former user')} to {label}: "
                                  f"{row.access_number} was reassigned in the configuration")
    return len(rows)
