"""The one seam through which the app pushes events to agents (one Socket.IO room each).

Pushes are a fast path, not the record: a client that misses one catches up with `sync`.
A burst of messages (statuses) for one agent goes out as one `messages` (`statuses`) event, a
list in order, instead of one event each: per event, python-socketio and the websocket cost
~100 µs of the one core we have (bench/README.md).
"""
from __future__ import annotations

import asyncio

import socketio
from aiohttp import web

NAMESPACE = "/agent"
MAX_BATCH = 1000  # items in one `messages` or `statuses` event


def room(user_id: int) -> str:
    return f"user:{user_id}"


def session_room(session_id: str) -> str:
    """Every socket of one login session (the tabs of one browser)."""
    return f"session:{session_id}"


class Hub:
    def __init__(self, sio: socketio.AsyncServer):
        self.sio = sio
        self._soon = Pushes()  # pushes for the end of this turn of the event loop
        self._flushing: set[asyncio.Task] = set()

    async def emit(self, user_id: int | None, event: str, payload, skip_sid: str | None = None) -> None:
        """Push `event` to every tab of this agent."""
        if user_id is not None:
            await self.sio.emit(event, payload, room=room(user_id), namespace=NAMESPACE, skip_sid=skip_sid)

    async def end_session(self, session_id: str, reason: str) -> None:
        """Tell every socket of this session it ended (`session_ended`), then disconnect them.

        The event reaches the session's sockets on every node; the disconnect, those of this node
        (elsewhere, each call is refused once the socket's token expires, and no refresh revives it)."""
        where = session_room(session_id)
        await self.sio.emit("session_ended", {"reason": reason}, room=where, namespace=NAMESPACE)
        for sid, _ in list(self.sio.manager.get_participants(NAMESPACE, where)):
            await self.sio.disconnect(sid, namespace=NAMESPACE)

    async def end_user(self, user_id: int, reason: str) -> None:
        """Tell this node's sockets of a user who is no longer configured (removed) that their session ended,
        then disconnect them; every node does so for its own when it swaps the change in (chat.workers.running)."""
        for sid, _ in list(self.sio.manager.get_participants(NAMESPACE, room(user_id))):
            await self.sio.emit("session_ended", {"reason": reason}, to=sid, namespace=NAMESPACE)
            await self.sio.disconnect(sid, namespace=NAMESPACE)

    def soon(self, user_id: int | None, event: str, payload: dict) -> None:
        """Push at the end of this turn of the event loop, together with the others pushed so."""
        if user_id is None:
            return
        if not self._soon:
            asyncio.get_running_loop().call_soon(self._flush_soon)
        self._soon.add(user_id, event, payload)

    def _flush_soon(self) -> None:
        pushes, self._soon = self._soon, Pushes()
        task = asyncio.ensure_future(pushes.flush(self))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)


class Pushes:
    """Pushes gathered while routing a burst; `flush` sends them, in order for each agent."""

    def __init__(self) -> None:
        self._by_user: dict[int, list[tuple[str, dict]]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_user)

    def add(self, user_id: int | None, event: str, payload: dict) -> None:
        if user_id is not None:
            self._by_user.setdefault(user_id, []).append((event, payload))

    async def flush(self, hub: Hub) -> None:
        """Send what was gathered: for each agent new conversations first, then the rest in order.

        (A conversation event only ever precedes its own messages; hoisting it keeps that and
        lets a burst's messages go out as one event: each emit costs python-socketio a task and a
        turn of the event loop, and a slow router falls behind.)"""
        by_user, self._by_user = self._by_user, {}
        for user_id, events in by_user.items():
            events.sort(key=lambda item: item[0] != "conversation")  # stable
            for event, payload in coalesce(events):
                await hub.emit(user_id, event, payload)


BATCHES = {"message": "messages", "status": "statuses"}  # event -> the event carrying a list of them


def coalesce(events: list[tuple[str, dict]]) -> list[tuple[str, object]]:
    """Runs of `message` (`status`) events as `messages` (`statuses`) lists; a run of one stays as it is."""
    out: list[tuple[str, object]] = []
    run: list[dict] = []
    kind: str | None = None

    def end_run() -> None:
        if not run:
            return
        assert kind is not None  # a run only ever holds events of one batched kind
        for start in range(0, len(run), MAX_BATCH):
            chunk = run[start:start + MAX_BATCH]
            out.append((kind, chunk[0]) if len(chunk) == 1 else (BATCHES[kind], chunk))
        run.clear()

    for event, payload in events:
        if event != kind:
            end_run()
            kind = event
        if event in BATCHES:
            run.append(payload)
        else:
            out.append((event, payload))
    end_run()
    return out


HUB = web.AppKey("hub", Hub)
