"""smpp parts and fingerprints

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('smpp_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('ref', sa.Integer(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('data_coding', sa.Integer(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=False),
    sa.Column('recipient', sa.String(length=32), nullable=False),
    sa.Column('done', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smpp_parts')),
    sa.UniqueConstraint('connector', 'key', 'seq', name=op.f('uq_smpp_parts_connector_key_seq'))
    )
    with op.batch_alter_table('smpp_parts', schema=None) as batch_op:
        batch_op.create_index('ix_smpp_parts_age', ['done', 'received_at'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('incomplete', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_messages_fingerprint', ['connector', 'fingerprint', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_fingerprint')
        batch_op.drop_column('incomplete')
        batch_op.drop_column('fingerprint')

    with op.batch_alter_table('smpp_parts', schema=None) as batch_op:
        batch_op.drop_index('ix_smpp_parts_age')

    op.drop_table('smpp_parts')
