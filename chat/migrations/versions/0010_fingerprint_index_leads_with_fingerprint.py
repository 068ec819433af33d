"""ix_messages_fingerprint leads with the fingerprint, so a lookup by provider id can only use its own index

Both the inbound duplicate checks compare the connector: by provider id (a webhook, its unique
constraint on connector and provider_id) and by content fingerprint (SMPP, this index). With the
connector first in both, PostgreSQL without statistics yet (a new database, autovacuum not run or
off) costs the two indexes alike for a lookup by provider id and may take this one, reading every
message of the connector: 1,823 index rows for one lookup in a database of 1,824 messages, and a
plan made then and kept grew with the table (issue 9). Fingerprint first, this index serves only
the fingerprint lookup, and each lookup reads its own rows whatever the statistics say.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_fingerprint')
        batch_op.create_index('ix_messages_fingerprint', ['fingerprint', 'connector', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_fingerprint')
        batch_op.create_index('ix_messages_fingerprint', ['connector', 'fingerprint', 'created_at'], unique=False)
