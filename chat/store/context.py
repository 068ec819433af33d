"""The store as a part of the running app: its keys and its cleanup context.

Rules: the database is opened (and migrated, unless told not to) before any other part starts
and closed after every other part has stopped; callers still waiting on a commit at that point
get an error, never a silent loss.
"""
from __future__ import annotations

from aiohttp import web

from chat.config import Config
from chat.store.commit import GroupCommit
from chat.store.db import Database
from chat.store.migrate import migrate

CONFIG = web.AppKey("config", Config)
DB = web.AppKey("db", Database)
COMMIT = web.AppKey("commit", GroupCommit)


async def store_context(app: web.Application, run_migrations: bool = True):
    """Open the database (migrated) and its group commit; close both last."""
    db = Database(app[CONFIG].database())
    if run_migrations:
        await migrate(db)
    app[DB], app[COMMIT] = db, GroupCommit(db)
    yield
    await app[COMMIT].close()
    await db.dispose()
