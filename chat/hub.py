"""The one seam through which the app pushes events to agents (one Socket.IO room each).

Pushes are a fast path, not the record: a client that misses one catches up with `sync`.
"""
from __future__ import annotations

import socketio

NAMESPACE = "/agent"


def room(user_id: int) -> str:
    return f"user:{user_id}"


class Hub:
    def __init__(self, sio: socketio.AsyncServer):
        self.sio = sio

    async def emit(self, user_id: int | None, event: str, payload: dict, skip_sid: str | None = None) -> None:
        """Push `event` to every tab of this agent."""
        if user_id is not None:
            await self.sio.emit(event, payload, room=room(user_id), namespace=NAMESPACE, skip_sid=skip_sid)
