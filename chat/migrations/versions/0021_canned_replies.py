"""canned_replies: global, team and personal replies an agent inserts with "/"

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'canned_replies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(16), nullable=False),
        sa.Column('team', sa.String(64)),
        sa.Column('user_id', sa.Integer()),
        sa.Column('shortcut', sa.String(32), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_canned_replies_user_id_users'),
        sa.PrimaryKeyConstraint('id', name='pk_canned_replies'),
    )
    op.create_index('ix_canned_replies_scope', 'canned_replies', ['scope', 'team', 'user_id'])
    # A shortcut once per scope, whatever its case (chat.domain.canned): NULLs never clash, hence coalesce.
    op.create_index('uq_canned_replies_shortcut', 'canned_replies', [
        'scope', sa.text("coalesce(team, '')"), sa.text('coalesce(user_id, 0)'), sa.text('lower(shortcut)')], unique=True)


def downgrade() -> None:
    op.drop_index('uq_canned_replies_shortcut', table_name='canned_replies')
    op.drop_index('ix_canned_replies_scope', table_name='canned_replies')
    op.drop_table('canned_replies')
