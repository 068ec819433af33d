"""send_pace: when each sender number's (and connector's) next send may start, shared by every node

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'send_pace',
        sa.Column('key', sa.String(128), nullable=False),
        sa.Column('next_us', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('key', name='pk_send_pace'),
    )


def downgrade() -> None:
    op.drop_table('send_pace')
