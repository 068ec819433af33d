"""A conversation's lifecycle: how and when it was closed, and by whom; snoozed until a time

`outcome` is one of the configured `conversations.outcomes` (or "inactive" when an access number's
`inactivity_close_seconds` closed it); `closed_by` is the agent who closed it (none: a scenario's
`close` step or inactivity); `snoozed_until` keeps an open conversation out of the agent's list
until then or until the customer texts. The index on `snoozed_until` holds only snoozed rows, so
a message's update of its conversation (which leaves `snoozed_until` NULL) stays HOT (0008).

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

Time = sa.DateTime(timezone=True)

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(64), nullable=True))
        batch_op.add_column(sa.Column('closed_at', Time, nullable=True))
        batch_op.add_column(sa.Column('closed_by', sa.Integer, nullable=True))
        batch_op.add_column(sa.Column('snoozed_until', Time, nullable=True))
        batch_op.create_foreign_key('fk_conversations_closed_by_users', 'users', ['closed_by'], ['id'])
        batch_op.create_index('ix_conversations_snoozed', ['snoozed_until'], unique=False,
                              sqlite_where=sa.text('snoozed_until IS NOT NULL'),
                              postgresql_where=sa.text('snoozed_until IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_snoozed')
        batch_op.drop_constraint('fk_conversations_closed_by_users', type_='foreignkey')
        batch_op.drop_column('snoozed_until')
        batch_op.drop_column('closed_by')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('outcome')
