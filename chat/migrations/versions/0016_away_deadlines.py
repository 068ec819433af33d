"""conversations.away_due_at: an away policy's deadline (a hold's escalation, a reassignment for want
of an agent's reply); the index holds only the rows that have one, so a message's update stays HOT

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('away_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_conversations_away_due', ['away_due_at'], unique=False,
                              sqlite_where=sa.text('away_due_at IS NOT NULL'),
                              postgresql_where=sa.text('away_due_at IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_away_due')
        batch_op.drop_column('away_due_at')
