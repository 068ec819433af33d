"""The agents' Socket.IO namespace: connect with a token, sync, send, presence, read, present.

Rules: a connection without a valid token is refused; each agent's tabs share one room and
receive only that agent's conversations; every client call is answered through its ack with
`{"ok": true, ...}` or `{"ok": false, "error", "field"}` and never raises into the transport.
"""
from __future__ import annotations

import asyncio
from functools import partial

import socketio
import sqlalchemy as sa
import structlog
from pydantic import ValidationError

from chat.auth import Unauthorized
from chat.hub import NAMESPACE, room
from chat.outbound import Refused, SendRequest, close_conversation, set_presented, store_send
from chat.presence import CHOICES
from chat.store.tables import conversations, users
from chat.sync import sync_for
from scenarios import Trigger

log = structlog.get_logger()


class AgentNamespace(socketio.AsyncNamespace):
    def __init__(self, services):
        super().__init__(NAMESPACE)
        self._services = services
        self._uid: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()

    @property
    def svc(self):
        return self._services()

    async def on_connect(self, sid, environ, auth=None):
        try:
            uid = self.svc.tokens.verify((auth or {}).get("token") if isinstance(auth, dict) else None)
        except Unauthorized:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        if uid not in self.svc.directory.agents:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        async with self.svc.db.read() as conn:
            choice = await conn.scalar(sa.select(users.c.presence).where(users.c.id == uid))
        self._uid[sid] = uid
        await self.enter_room(sid, room(uid))
        self.svc.presence.connect(uid, sid, choice or "ready")
        self._spawn(self._offer_waiting(uid))
        log.info("agent.connected", user=self.svc.directory.agents[uid].name, sid=sid)

    async def on_disconnect(self, sid, reason=None):
        uid = self._uid.pop(sid, None)
        if uid is not None:
            self.svc.presence.disconnect(uid, sid)

    async def on_sync(self, sid, data=None):
        return await self._call(sid, self._sync, data or {})

    async def on_send(self, sid, data=None):
        return await self._call(sid, self._send, data or {})

    async def on_presence(self, sid, data=None):
        return await self._call(sid, self._presence, data or {})

    async def on_read(self, sid, data=None):
        return await self._call(sid, self._read, data or {})

    async def on_present(self, sid, data=None):
        return await self._call(sid, self._present, data or {})

    async def on_close(self, sid, data=None):
        return await self._call(sid, self._close, data or {})

    async def _call(self, sid, handler, data) -> dict:
        uid = self._uid.get(sid)
        if uid is None:
            return {"ok": False, "error": "not connected"}
        try:
            return await handler(sid, self.svc.directory.agents[uid], data)
        except Refused as err:
            return {"ok": False, "error": str(err), "field": err.field}
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            return {"ok": False, "error": f"{field}: {first['msg']}" if field else first["msg"], "field": field}
        except (TypeError, ValueError, KeyError) as err:
            return {"ok": False, "error": f"bad request: {err}"}

    async def _sync(self, sid, agent, data) -> dict:
        cursors = {int(k): int(v) for k, v in (data.get("cursors") or {}).items()}
        since = data.get("since")
        async with self.svc.db.read() as conn:
            answer = await sync_for(conn, agent.id, cursors, float(since) if since is not None else None)
        answer["user"] = {"name": agent.name, "display_name": agent.display_name, "role": agent.role}
        answer["presence"] = self.svc.presence.state(agent.id)
        answer["numbers"] = self.svc.directory.numbers_payload(agent)
        return answer

    async def _send(self, sid, agent, data) -> dict:
        req = SendRequest.model_validate(data)
        queued = await self.svc.commit.run(partial(store_send, agent=agent, req=req, directory=self.svc.directory))
        if not queued.repeated:
            if queued.head is not None:
                self.svc.outbox.offer(queued.head)
            self.svc.automation.agent_replied(queued.message["conversation_id"])
            if queued.new_conversation:
                await self.svc.hub.emit(agent.id, "conversation", queued.conversation)
            await self.svc.hub.emit(agent.id, "message", queued.message, skip_sid=sid)
        return {"ok": True, "message": queued.message, "conversation": queued.conversation}

    async def _presence(self, sid, agent, data) -> dict:
        state = data.get("state")
        if state not in CHOICES:
            raise Refused(f"state must be one of {', '.join(CHOICES)}", "state")
        await self.svc.commit.run(partial(_save_presence, user_id=agent.id, state=state))
        self.svc.presence.choose(agent.id, state)
        await self.svc.hub.emit(agent.id, "presence", {"state": state}, skip_sid=sid)
        self._spawn(self._offer_waiting(agent.id))
        return {"ok": True, "state": state}

    async def _read(self, sid, agent, data) -> dict:
        cid, seq = int(data["conversation_id"]), int(data["seq"])
        await self.svc.commit.run(partial(_mark_read, user_id=agent.id, conversation_id=cid, seq=seq))
        return {"ok": True}

    async def _present(self, sid, agent, data) -> dict:
        unit = partial(set_presented, agent=agent, conversation_id=int(data["conversation_id"]), number=str(data["number"]))
        conv = await self.svc.commit.run(unit)
        await self.svc.hub.emit(agent.id, "conversation", conv, skip_sid=sid)
        return {"ok": True, "conversation": conv}

    async def _close(self, sid, agent, data) -> dict:
        cid = int(data["conversation_id"])
        conv = await self.svc.commit.run(partial(close_conversation, agent=agent, conversation_id=cid))
        await self.svc.hub.emit(agent.id, "conversation", conv)
        self._spawn(self.svc.automation.handle(cid, Trigger("conversation_closed")))
        return {"ok": True, "conversation": conv}

    async def _offer_waiting(self, uid: int) -> None:
        if self.svc.presence.available(uid):
            await self.svc.router.assign_waiting(uid)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _save_presence(conn, user_id: int, state: str) -> None:
    await conn.execute(users.update().where(users.c.id == user_id).values(presence=state))


async def _mark_read(conn, user_id: int, conversation_id: int, seq: int) -> None:
    await conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id, conversations.c.assigned_id == user_id, conversations.c.read_seq < seq)
        .values(read_seq=seq)
    )
