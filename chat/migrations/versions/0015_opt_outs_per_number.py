"""opt_outs: an opt-out per (contact, our number), or "*" for all our numbers

Until now an opt-out was contacts.opted_out, for every number: those become "*" rows, so nobody who
opted out is texted again by this upgrade. New STOPs record the number they were sent to (the
default `opt_out_scope: number`).

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'opt_outs',
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name='fk_opt_outs_contact_id_contacts'),
        sa.PrimaryKeyConstraint('contact_id', 'number', name='pk_opt_outs'),
    )
    op.execute("INSERT INTO opt_outs (contact_id, number, created_at) "
               "SELECT id, '*', created_at FROM contacts WHERE opted_out")


def downgrade() -> None:
    op.drop_table('opt_outs')
