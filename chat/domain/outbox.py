"""The outbox's rows (units of work): the head of a conversation's queue is the only row that may leave."""
from __future__ import annotations

import sqlalchemy as sa

from chat.store.fast import hot
from chat.store.tables import contacts, conversations, messages, outbox

# The row a send needs: the outbox entry, its message's text and addresses, the contact's opt-out.
DUE_COLUMNS = (outbox, messages.c.text, messages.c.sender, messages.c.recipient, messages.c.compliance,
               contacts.c.opted_out)


def _due_query():
    return (sa.select(*DUE_COLUMNS)
            .join(messages, messages.c.id == outbox.c.message_id)
            .join(conversations, conversations.c.id == outbox.c.conversation_id)
            .join(contacts, contacts.c.id == conversations.c.contact_id))


# A conversation's first outbox row (the only one that may leave now).
HEAD_OF = hot(_due_query().where(outbox.c.conversation_id == sa.bindparam("cid")).order_by(outbox.c.id).limit(1))


async def head_of(conn, conversation_id: int):
    return (await conn.execute(HEAD_OF, {"cid": conversation_id})).first()
