"""scenario runs, timers, crm outbox

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=True),
    sa.Column('body', sa.JSON(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_outbox')),
    sa.UniqueConstraint('key', name=op.f('uq_crm_outbox_key'))
    )
    with op.batch_alter_table('crm_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_outbox_next_attempt_at'), ['next_attempt_at'], unique=False)

    op.create_table('scenario_runs',
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('scenario', sa.String(length=200), nullable=False),
    sa.Column('run', sa.JSON(), nullable=False),
    sa.Column('wake_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_scenario_runs_conversation_id_conversations')),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_scenario_runs'))
    )
    with op.batch_alter_table('scenario_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scenario_runs_wake_at'), ['wake_at'], unique=False)

    op.create_table('scenario_timers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_scenario_timers_conversation_id_conversations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_timers'))
    )
    with op.batch_alter_table('scenario_timers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scenario_timers_at'), ['at'], unique=False)

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fields', sa.JSON(), nullable=True))

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tags', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('reply_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_reply_due_at'), ['reply_due_at'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compliance', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.alter_column('direction', existing_type=sa.String(length=3), type_=sa.String(length=8), existing_nullable=False)



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('direction', existing_type=sa.String(length=8), type_=sa.String(length=3), existing_nullable=False)
        batch_op.drop_column('compliance')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_reply_due_at'))
        batch_op.drop_column('reply_due_at')
        batch_op.drop_column('tags')
        batch_op.drop_column('team')

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('fields')

    with op.batch_alter_table('scenario_timers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scenario_timers_at'))

    op.drop_table('scenario_timers')
    with op.batch_alter_table('scenario_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scenario_runs_wake_at'))

    op.drop_table('scenario_runs')
    with op.batch_alter_table('crm_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_outbox_next_attempt_at'))

    op.drop_table('crm_outbox')
