"""config_revisions: the running configuration, one row per revision (admin API, `didchat config apply`)

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'config_revisions',
        sa.Column('revision', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('author', sa.String(64), nullable=False),
        sa.Column('fingerprint', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('revision', name='pk_config_revisions'),
    )


def downgrade() -> None:
    op.drop_table('config_revisions')
