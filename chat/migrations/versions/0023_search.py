"""search: a full-text index over messages.text (SQLite FTS5, PostgreSQL GIN over to_tsvector('simple'))

What chat.domain.search reads; the messages already stored are indexed here.

SQLite: `messages_fts`, an FTS5 table over messages.text with messages as its external content (the text is not
stored twice), its tokenizer unicode61 with accents kept, as PostgreSQL's 'simple' keeps them (one rule on both).
Not indexed by a trigger per row: FTS5 writes its pending terms out as a new segment at every statement that
writes to it (its savepoint), and then merges those segments; that cost 15-25 us of CPU per stored message
(2 to 14 words), against a node's ~200 us per inbound webhook. So an insert only queues the message's id in
`messages_unindexed`, and a message whose id is a multiple of INDEX_EVERY indexes the whole queue in one
statement: +3 to +5 us a message (measured with 40,000 inserts in batches of 40, as the group commit makes them).
A search indexes what is left in the queue first (chat.domain.search.index_queued), so it finds a message stored
a moment before. A deleted or edited message leaves the index at once (its own triggers).
Neither table is in chat.store.tables' metadata: they exist on SQLite only, as its index's machinery. A later
migration that rebuilds `messages` on SQLite (Alembic's batch mode copies the table and drops the old one, and
its triggers with it) must create these triggers again.

PostgreSQL: core full-text search, no extension (pg_trgm is not on every server): a GIN index over
to_tsvector('simple', text) (no stemming, no stop words: names and numbers are words too), which the server keeps.

Revision ID: 0023
Revises: 0022
"""
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

# The queue is indexed when a message with a multiple of this id is stored. Larger batches merge less: +11, +6 and
# +4.5 us a 14-word message with 256, 1,024 and 4,096; a search then indexes at most 4,095 rows (~10 ms).
INDEX_EVERY = 4096

SQLITE_UP = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 0')",
    "CREATE TABLE messages_unindexed (id INTEGER PRIMARY KEY)",
    "CREATE TRIGGER messages_fts_queue AFTER INSERT ON messages BEGIN"
    " INSERT OR IGNORE INTO messages_unindexed (id) VALUES (new.id); END",
    f"CREATE TRIGGER messages_fts_batch AFTER INSERT ON messages WHEN new.id % {INDEX_EVERY} = 0 BEGIN"
    " INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages WHERE id IN (SELECT id FROM messages_unindexed);"
    " DELETE FROM messages_unindexed; END",
    # A message in the index leaves it with the text it was indexed with; one still queued only leaves the queue.
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.id, old.text"
    " WHERE NOT EXISTS (SELECT 1 FROM messages_unindexed WHERE id = old.id);"
    " DELETE FROM messages_unindexed WHERE id = old.id; END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.id, old.text"
    " WHERE NOT EXISTS (SELECT 1 FROM messages_unindexed WHERE id = old.id);"
    " INSERT OR IGNORE INTO messages_unindexed (id) VALUES (new.id); END",
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",  # the messages stored before this migration
)
SQLITE_DOWN = (
    "DROP TRIGGER messages_fts_update", "DROP TRIGGER messages_fts_delete", "DROP TRIGGER messages_fts_batch",
    "DROP TRIGGER messages_fts_queue", "DROP TABLE messages_unindexed", "DROP TABLE messages_fts",
)
POSTGRESQL_UP = ("CREATE INDEX ix_messages_text_search ON messages USING gin (to_tsvector('simple', text))",)
POSTGRESQL_DOWN = ("DROP INDEX ix_messages_text_search",)


def upgrade() -> None:
    for statement in SQLITE_UP if op.get_bind().dialect.name == 'sqlite' else POSTGRESQL_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in SQLITE_DOWN if op.get_bind().dialect.name == 'sqlite' else POSTGRESQL_DOWN:
        op.execute(statement)
