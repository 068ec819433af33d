"""The store: schema, engine and migrations."""
from chat.store.db import Database, as_utc, utcnow
from chat.store.migrate import migrate

__all__ = ["Database", "as_utc", "migrate", "utcnow"]
