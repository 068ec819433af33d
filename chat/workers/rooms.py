"""Socket.IO rooms with an index of each client's rooms, so a disconnect costs its own rooms, not all.

Rules:
- python-socketio's BaseManager finds a client's rooms by copying and scanning every room of the
  namespace (one per socket, one per agent, one per session: 12,000 at 10,000 sockets) on each
  disconnect: a reconnect storm of 10,000 spent three quarters of the server's CPU there and no
  socket came back within 5 minutes (bench/sockets.py, py-spy). `IndexedRooms` keeps
  (namespace, sid) -> rooms beside `self.rooms`, updated where python-socketio enters and leaves
  rooms, and answers `basic_disconnect` and `get_rooms` from it.
- It is a mixin for any python-socketio manager (the in-process one and the Redis one): only the
  basic_* methods, which every manager shares, are overridden.
- Watching (a supervisor's live monitor): a socket in room `watch:{conversation id}` gets a copy,
  as `monitored` {event, payload}, of every `conversation`, `message` and `status` push of that
  conversation to its agent (a `messages` or `statuses` list as one copy per item). The copy is made where the push is delivered to this node's
  sockets, from the push every node gets anyway (the Redis manager hands each push to every node),
  so it costs no Redis traffic, and nothing at all while no socket of this node watches.
"""
from __future__ import annotations

import socketio

WATCHED = {"conversation": ("conversation", "id"), "message": ("message", "conversation_id"),
           "messages": ("message", "conversation_id"), "status": ("status", "conversation_id"),
           "statuses": ("status", "conversation_id")}  # event -> (the copy's event, its conversation's key)
WATCH = "watch:"


def watch_room(conversation_id: object) -> str:
    return f"{WATCH}{conversation_id}"


class IndexedRooms:
    """BaseManager's room bookkeeping, with each client's rooms indexed."""

    rooms: dict
    callbacks: dict
    pending_connect: dict
    pending_disconnect: dict

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rooms_of: dict[tuple[str, str], set] = {}
        self.watching = 0  # sockets of this node in a watch room

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        rooms = self.rooms_of.setdefault((namespace, sid), set())
        if isinstance(room, str) and room.startswith(WATCH) and room not in rooms:
            self.watching += 1
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        rooms.add(room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        rooms = self.rooms_of.get((namespace, sid))
        if rooms is not None:
            if isinstance(room, str) and room.startswith(WATCH) and room in rooms:
                self.watching -= 1
            rooms.discard(room)
            if not rooms:
                del self.rooms_of[namespace, sid]

    async def copy_to_watchers(self, event, data, namespace, room) -> None:
        """A push to an agent, copied to the sockets of this node that watch its conversation (see Rules)."""
        if not self.watching or event not in WATCHED or not isinstance(room, str) or not room.startswith("user:"):
            return
        (single, key), rooms = WATCHED[event], self.rooms.get(namespace, {})
        for item in data if isinstance(data, list) else [data]:
            watch = watch_room(item.get(key)) if isinstance(item, dict) else None
            if watch in rooms:
                await socketio.AsyncManager.emit(self, "monitored", {"event": single, "payload": item}, namespace,
                                                 room=watch)

    def basic_disconnect(self, sid, namespace, **kwargs):
        """What BaseManager.basic_disconnect does, with the client's own rooms read from the index."""
        if namespace not in self.rooms:
            return
        for room in list(self.rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.rooms_of.pop((namespace, sid), None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def get_rooms(self, sid, namespace):
        return [room for room in self.rooms_of.get((namespace, sid), ()) if room is not None]


class LocalManager(IndexedRooms, socketio.AsyncManager):
    """python-socketio's in-process manager (one node), with indexed rooms and watchers."""

    async def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs)
        await self.copy_to_watchers(event, data, namespace, to or room)
