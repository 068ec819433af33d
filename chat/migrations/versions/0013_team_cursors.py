"""team_cursors: where each team's round robin is, and the row its queue is dealt under

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'team_cursors',
        sa.Column('team', sa.String(64), nullable=False),
        sa.Column('last_user_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('team', name='pk_team_cursors'),
    )


def downgrade() -> None:
    op.drop_table('team_cursors')
