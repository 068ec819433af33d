"""chat.workers.rooms: the same rooms as python-socketio's manager, found through the index."""
from __future__ import annotations

import socketio

from chat.workers.rooms import LocalManager

NS = "/agent"


async def connected(count: int):
    """A server on both managers, `count` clients in their sid rooms, an agent room and a session room each."""
    servers = []
    for manager in (socketio.AsyncManager(), LocalManager()):
        sio = socketio.AsyncServer(client_manager=manager)
        sids = [await manager.connect(f"eio{i}", NS) for i in range(count)]
        for i, sid in enumerate(sids):
            await manager.enter_room(sid, NS, f"user:{i % 3}")
            await manager.enter_room(sid, NS, f"session:{i}")
        servers.append((sio, manager, sids))
    return servers


def rooms(manager) -> dict:
    return {room: dict(members) for room, members in manager.rooms.get(NS, {}).items()}


async def test_disconnects_leave_the_same_rooms_as_python_socketio():
    (_, plain, plain_sids), (_, indexed, sids) = await connected(6)
    for manager, names in ((plain, plain_sids), (indexed, sids)):
        await manager.leave_room(names[0], NS, "user:0")
        await manager.disconnect(names[1], NS)
        manager.pre_disconnect(names[2], NS)
        await manager.disconnect(names[2], NS)
    def own(manager, sid):  # a client's rooms, its sid room named "sid"
        return sorted("sid" if room == sid else room for room in manager.get_rooms(sid, NS))

    assert own(indexed, sids[0]) == own(plain, plain_sids[0]) == ["session:0", "sid"]
    assert sorted(indexed.get_rooms(sids[3], NS)) == sorted([sids[3], "user:0", "session:3"])
    assert indexed.get_rooms(sids[1], NS) == []
    assert not indexed.is_connected(sids[2], NS) and not indexed.pending_disconnect
    shape = {k if not str(k).startswith("session") else "s": len(v) for k, v in rooms(indexed).items() if k not in sids}
    plain_shape = {k if not str(k).startswith("session") else "s": len(v) for k, v in rooms(plain).items()
                   if k not in plain_sids}
    assert shape == plain_shape
    assert (NS, sids[1]) not in indexed.rooms_of and (NS, sids[2]) not in indexed.rooms_of


async def test_every_client_gone_leaves_nothing_behind():
    (_, _, _), (_, indexed, sids) = await connected(4)
    for sid in sids:
        await indexed.disconnect(sid, NS)
    assert indexed.rooms_of == {}
    assert NS not in indexed.rooms
