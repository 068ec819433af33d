"""The agent's `ping` call: the browser client's heartbeat, so a silent link shows as lost within 2 s.

Rules: answered from memory, without the store (the namespace still checks the socket's token, and its session
every few seconds, as for any call), so a late answer says the link or this node's loop is stuck; it changes
nothing. The client sends one a second while it is connected (docs/agent-protocol.md, `ping`).
"""
from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict


class PingPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


async def ping(app, agent, payload: PingPayload) -> dict:
    """The link is alive: `server_time` in unix seconds."""
    return {"ok": True, "server_time": time.time()}


LINK_CALLS = {"ping": (PingPayload, ping)}
