"""status callbacks expiry: an index on pending_reports.received_at for the expiry sweep

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pending_reports', schema=None) as batch_op:
        batch_op.create_index('ix_pending_reports_received_at', ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pending_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_pending_reports_received_at')
