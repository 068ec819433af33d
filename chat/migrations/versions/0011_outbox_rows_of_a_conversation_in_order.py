"""ix_outbox_conversation_id holds a conversation's rows in id order: finding its head reads one row

Claiming a conversation's head (chat.domain.outbox.CLAIM_HEAD, when a send is recorded) looks for
its first row that is due and free and has no earlier row. With the index on conversation_id
alone, PostgreSQL sorted the conversation's rows and checked each for an earlier one, for each of
them: with 25 replies queued per conversation, a batch of 50 recorded sends read 94,000 heap
blocks and took 80 ms (`EXPLAIN ANALYZE`), and the SMPP outbox drained at 0.17 x SQLite's rate
(issue 9). On (conversation_id, id) the rows come in order, the earlier-row check is one probe,
and the first row that passes ends the search.

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_conversation_id')
        batch_op.create_index('ix_outbox_conversation_id', ['conversation_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_conversation_id')
        batch_op.create_index('ix_outbox_conversation_id', ['conversation_id'], unique=False)
