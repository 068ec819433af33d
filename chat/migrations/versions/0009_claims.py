"""claims: the outbox and the CRM outbox say which node works on a row, until when, and its fencing token

Several nodes share one database (issue 9): a row of work is claimed by one node at a time
(chat.domain.claims). None of the three columns is indexed: claiming and renewing rewrite them
often, and on PostgreSQL those updates stay HOT.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TABLES = ('outbox', 'crm_outbox')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('claim_token', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('claim_token')
            batch_op.drop_column('claimed_until')
            batch_op.drop_column('claimed_by')
