"""uploads: files agents attach to replies, served to the MMS provider by an unguessable token

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'uploads',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token', sa.String(64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('content_type', sa.String(128), nullable=False),
        sa.Column('filename', sa.String(200)),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_uploads_user_id_users'),
        sa.PrimaryKeyConstraint('id', name='pk_uploads'),
        sa.UniqueConstraint('token', name='uq_uploads_token'),
    )


def downgrade() -> None:
    op.drop_table('uploads')
