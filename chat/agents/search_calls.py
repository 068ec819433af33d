"""The agent's `search` call: their conversations filtered, searched and paged (chat.domain.search).

Rules: the payload is checked here, at the edge (docs/agent-protocol.md, "search"); what the store holds is
read in one read transaction. On SQLite a search with text first has the messages stored since the index's
last batch indexed (a write unit, only when some wait), so it finds a message stored just before it.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chat.domain.search import MAX_PAGE, MAX_QUERY, PAGE, Search, index_behind, index_queued, search_conversations
from chat.store.context import COMMIT, DB


class SearchPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    q: str | None = Field(default=None, strict=True, max_length=MAX_QUERY)
    state: Literal["open", "waiting", "closed"] | None = None
    unread: bool = Field(default=False, strict=True)
    before: str | None = Field(default=None, strict=True, max_length=64)
    limit: int = Field(default=PAGE, strict=True, ge=1, le=MAX_PAGE)
    everyone: bool = Field(default=False, strict=True)


async def search(app, agent, payload: SearchPayload) -> dict:
    """A page of the agent's conversations that match, newest first, and `next`: the cursor of the next page."""
    wanted = Search(**payload.model_dump())
    async with app[DB].read() as conn:
        if not (wanted.q and wanted.q.strip() and await index_behind(conn)):
            return {"ok": True, **await search_conversations(conn, agent, wanted)}
    await app[COMMIT].run(index_queued)
    async with app[DB].read() as conn:
        return {"ok": True, **await search_conversations(conn, agent, wanted)}


SEARCH_CALLS = {"search": (SearchPayload, search)}
