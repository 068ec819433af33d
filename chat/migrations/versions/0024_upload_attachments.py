"""uploads.attached_at: when a send attached the upload (each goes with one message), so the ones never sent are
found and deleted after a day without reading every message's media (chat.domain.uploads)

Uploads already attached are marked with their message's time.

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

_uploads = sa.table('uploads', sa.column('id', sa.Integer()), sa.column('attached_at', sa.DateTime(timezone=True)))
_messages = sa.table('messages', sa.column('direction', sa.String()), sa.column('media', sa.JSON()),
                     sa.column('created_at', sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.add_column('uploads', sa.Column('attached_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_uploads_unsent', 'uploads', ['attached_at', 'created_at'])
    bind = op.get_bind()
    rows = bind.execute(sa.select(_messages.c.media, _messages.c.created_at).where(_messages.c.direction == 'out'))
    marks = [{"uid": item["upload_id"], "at": at} for media, at in rows if isinstance(media, list)
             for item in media if isinstance(item, dict) and isinstance(item.get("upload_id"), int)]
    if marks:
        bind.execute(_uploads.update().where(_uploads.c.id == sa.bindparam("uid"), _uploads.c.attached_at.is_(None))
                     .values(attached_at=sa.bindparam("at")), marks)


def downgrade() -> None:
    op.drop_index('ix_uploads_unsent', 'uploads')
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_column('attached_at')
