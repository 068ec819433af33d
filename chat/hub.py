"""The one seam through which the app pushes events to agents (one Socket.IO room each).

Pushes are a fast path, not the record: a client that misses one catches up with `sync`.
A burst of messages for one agent goes out as one `messages` event (a list, in order) instead
of one `message` event each: per event, python-socketio and the websocket cost ~100 µs of the
one core we have (bench/README.md).
"""
from __future__ import annotations

import socketio

NAMESPACE = "/agent"
MAX_BATCH = 100  # messages in one `messages` event


def room(user_id: int) -> str:
    return f"user:{user_id}"


class Hub:
    def __init__(self, sio: socketio.AsyncServer):
        self.sio = sio

    async def emit(self, user_id: int | None, event: str, payload, skip_sid: str | None = None) -> None:
        """Push `event` to every tab of this agent."""
        if user_id is not None:
            await self.sio.emit(event, payload, room=room(user_id), namespace=NAMESPACE, skip_sid=skip_sid)


class Pushes:
    """Pushes gathered while routing a burst; `flush` sends them, in order for each agent."""

    def __init__(self) -> None:
        self._by_user: dict[int, list[tuple[str, dict]]] = {}

    def add(self, user_id: int | None, event: str, payload: dict) -> None:
        if user_id is not None:
            self._by_user.setdefault(user_id, []).append((event, payload))

    async def flush(self, hub: Hub) -> None:
        by_user, self._by_user = self._by_user, {}
        for user_id, events in by_user.items():
            for event, payload in coalesce(events):
                await hub.emit(user_id, event, payload)


def coalesce(events: list[tuple[str, dict]]) -> list[tuple[str, object]]:
    """Runs of `message` events as `messages` lists (a run of one stays a `message`)."""
    out: list[tuple[str, object]] = []
    run: list[dict] = []

    def end_run() -> None:
        for start in range(0, len(run), MAX_BATCH):
            chunk = run[start:start + MAX_BATCH]
            out.append(("message", chunk[0]) if len(chunk) == 1 else ("messages", chunk))
        run.clear()

    for event, payload in events:
        if event == "message":
            run.append(payload)
            continue
        end_run()
        out.append((event, payload))
    end_run()
    return out
