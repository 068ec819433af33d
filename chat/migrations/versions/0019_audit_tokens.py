"""audit_log, api_tokens, and crm_outbox.conversation_id (a contact's deletion finds its pending activities)

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(128), nullable=False),
        sa.Column('action', sa.String(48), nullable=False),
        sa.Column('target', sa.String(200), server_default='', nullable=False),
        sa.Column('address', sa.String(64), server_default='', nullable=False),
        sa.Column('details', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_audit_log'),
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_index('ix_audit_log_action', 'audit_log', ['action'])
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.String(16), nullable=False),
        sa.Column('name', sa.String(64), nullable=False),
        sa.Column('secret_hash', sa.String(64), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.String(128), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_api_tokens'),
    )
    with op.batch_alter_table('crm_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversation_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_crm_outbox_conversation_id', ['conversation_id'])
        batch_op.create_foreign_key('fk_crm_outbox_conversation_id_conversations', 'conversations', ['conversation_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('crm_outbox', schema=None) as batch_op:
        batch_op.drop_constraint('fk_crm_outbox_conversation_id_conversations', type_='foreignkey')
        batch_op.drop_index('ix_crm_outbox_conversation_id')
        batch_op.drop_column('conversation_id')
    op.drop_table('api_tokens')
    op.drop_index('ix_audit_log_action', 'audit_log')
    op.drop_index('ix_audit_log_at', 'audit_log')
    op.drop_table('audit_log')
