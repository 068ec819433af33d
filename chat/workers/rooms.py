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
"""
from __future__ import annotations

import socketio


class IndexedRooms:
    """BaseManager's room bookkeeping, with each client's rooms indexed."""

    rooms: dict
    callbacks: dict
    pending_connect: dict
    pending_disconnect: dict

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rooms_of: dict[tuple[str, str], set] = {}

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        rooms = self.rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self.rooms_of[namespace, sid]

    def basic_disconnect(self, sid, namespace, **kwargs):
        """What BaseManager.basic_disconnect does, with the client's own rooms read from the index."""
        if namespace not in self.rooms:
            return
        for room in list(self.rooms_of.pop((namespace, sid), ())):
            super().basic_leave_room(sid, namespace, room)
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
    """python-socketio's in-process manager (one node), with indexed rooms."""
