"""The agents' Socket.IO namespace: connect with a token, then the calls of docs/agent-protocol.md.

Rules: a connection without a valid token of a live session is refused; a connect reads the store
once (the session and the chosen presence together) and writes nothing itself: what waits for the agent
is offered on their first tab on this node, and claimed only if a read finds some (a reconnect
storm is 10,000 connects: bench/README.md). Each agent's tabs share one room and receive only
that agent's conversations, and each socket is also in its session's room (so logging out
disconnects every tab of it). Every client call is answered through its ack, within CALL_SECONDS,
whatever its name or payload: `{"ok": true, ...}` or `{"ok": false, "error", "field"?, "retry"?,
"reauth"?}`; nothing raises into the transport. Payloads are validated by one pydantic model per
event, here at the edge. A call after the socket's token expired is refused with `reauth` (the
client refreshes and sends `auth`).
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import socketio
import sqlalchemy as sa
import structlog
from aiohttp import web
from pydantic import ValidationError

from chat.agents.auth import TOKENS, Claims, Unauthorized
from chat.agents.calls import CALLS
from chat.agents.payloads import (
    AssignPayload,
    AuthPayload,
    BoardPayload,
    ClaimPayload,
    ClosePayload,
    DefaultNumberPayload,
    HistoryPayload,
    MonitorPayload,
    Payload,
    PresencePayload,
    PresentPayload,
    ReadPayload,
    ReopenPayload,
    SnoozePayload,
    SyncPayload,
    TransferPayload,
)
from chat.domain.agents import anything_waits, choose_number, chosen_number, mark_read, save_presence
from chat.domain.board import Filters, board, may_supervise, monitor, move
from chat.domain.history import sync_for
from chat.domain.lifecycle import (
    Outcomes,
    close_conversation,
    earlier_conversations,
    reopen_conversation,
    snooze_conversation,
)
from chat.domain.outbound import Refused, SendRequest, set_presented, store_send
from chat.domain.sessions import live_presence, session_alive
from chat.domain.transfers import Target, Transferred, transfer_conversation
from chat.domain.waiting import queued_for
from chat.store.context import COMMIT, DB
from chat.workers.automation import AUTOMATION
from chat.workers.hub import HUB, NAMESPACE, room, session_room
from chat.workers.outbox import OUTBOX_WORKER
from chat.workers.presence import PRESENCE
from chat.workers.rooms import WATCH, watch_room
from chat.workers.routing import ROUTER
from chat.workers.running import DIRECTORY
from gateway import InvalidNumber, normalize_number
from scenarios import Trigger

log = structlog.get_logger()
CALL_SECONDS = 10.0  # the longest a call waits for the store before it is answered "retry"
# How long a socket's calls trust that its session lives. This node disconnects the sockets of a
# session that ends here at once; one that ends on another node is noticed within this time.
SESSION_CHECK_SECONDS = 5.0
UNAVAILABLE = {"ok": False, "error": "temporarily unavailable, retry", "retry": True}
EXPIRED = {"ok": False, "error": "token expired", "field": "token", "reauth": True}
ENDED = {"ok": False, "error": "session ended", "field": "token", "reauth": True}


@dataclass(frozen=True)
class Seat:
    """Who a socket speaks for, and until when."""

    user_id: int
    session_id: str
    expires_at: float  # unix seconds: the token's expiry
    checked_at: float  # monotonic seconds: when the session was last seen alive in the store

    @classmethod
    def of(cls, claims: Claims) -> Seat:
        return cls(claims.user_id, claims.session_id, claims.expires_at, time.monotonic())


# Data the store refused although it passed validation: retrying cannot help.
STORE_REFUSALS = (sa.exc.DataError, sa.exc.ProgrammingError, sqlite3.DataError, sqlite3.ProgrammingError,
                  OverflowError, UnicodeError)
# Failures of the store, or of waiting for it, that may pass: the client retries the same call
# (GroupCommit fails its waiting callers with RuntimeError while didchat shuts down).
STORE_ERRORS = (sa.exc.SQLAlchemyError, sqlite3.Error, OSError, TimeoutError, RuntimeError)


class AgentNamespace(socketio.AsyncNamespace):
    def __init__(self, app: web.Application):
        super().__init__(NAMESPACE)
        self.app = app  # its parts are read through their keys when an event comes (they start after this)
        self._seats: dict[str, Seat] = {}
        self._tasks: set[asyncio.Task] = set()
        self._events: dict[str | None, tuple[Any, Any]] = {
            "sync": (SyncPayload, self._sync), "send": (SendRequest, self._send),
            "presence": (PresencePayload, self._presence), "read": (ReadPayload, self._read),
            "present": (PresentPayload, self._present), "close": (ClosePayload, self._close),
            "auth": (AuthPayload, self._auth), "claim": (ClaimPayload, self._claim),
            "reopen": (ReopenPayload, self._reopen), "snooze": (SnoozePayload, self._snooze),
            "history": (HistoryPayload, self._history), "transfer": (TransferPayload, self._transfer),
            "targets": (Payload, self._list_targets),
            "default_number": (DefaultNumberPayload, self._default_number),
            "board": (BoardPayload, self._board), "assign": (AssignPayload, self._assign),
            "take_over": (MonitorPayload, self._take_over), "monitor": (MonitorPayload, self._monitor),
            "unmonitor": (Payload, self._unmonitor),
        }
        self._events.update({name: (model, partial(self._call, handler)) for name, (model, handler) in CALLS.items()})

    async def trigger_event(self, event, *args):
        """Every event: connect and disconnect from python-socketio, the rest answered by `_answer`."""
        sid = args[0]
        if event in ("connect", "disconnect"):
            if self.server.manager.is_connected(sid, self.namespace):  # sent by a client, not the transport
                return {"ok": False, "error": f"{event} is not an event a client may send", "field": "event"}
            return await super().trigger_event(event, *args)
        return await self._answer(sid, event, args[1] if len(args) > 1 else None)

    async def on_connect(self, sid, environ, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            claims = self.app[TOKENS].verify(token)
            if claims.user_id not in self.app[DIRECTORY].current.agents:
                raise Unauthorized("unknown user")
            async with self.app[DB].read() as conn:
                choice = await live_presence(conn, claims.session_id, claims.user_id)
            if choice is None:
                raise Unauthorized("session ended")
        except Unauthorized:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        except STORE_ERRORS as err:
            log.warning("agent.connect_failed", error=type(err).__name__)
            raise socketio.exceptions.ConnectionRefusedError("temporarily unavailable") from None
        await self._seat(sid, Seat.of(claims))
        if self.app[PRESENCE].connect(claims.user_id, sid, choice):
            # The agent's first tab here: offer what waits for them once, not once per tab (a write
            # unit per socket was a third of a reconnect storm's server CPU: bench/README.md).
            self._spawn(self._offer_waiting(claims.user_id))
        log.debug("agent.connected", user=claims.user_id, sid=sid)  # debug: a storm is 10,000 of them

    async def on_disconnect(self, sid, reason=None):
        seat = self._seats.pop(sid, None)
        if seat is not None:
            self.app[PRESENCE].disconnect(seat.user_id, sid)

    async def _seat(self, sid: str, seat: Seat) -> None:
        """Seat the socket in its agent's room and its session's room."""
        old = self._seats.get(sid)
        if old is not None and old.session_id != seat.session_id:
            await self.leave_room(sid, session_room(old.session_id))
        self._seats[sid] = seat
        await self.enter_room(sid, room(seat.user_id))
        await self.enter_room(sid, session_room(seat.session_id))

    async def _answer(self, sid, event, data) -> dict:
        """The ack for one client call, whatever it holds; never raises."""
        name = event if isinstance(event, str) else None
        try:
            async with asyncio.timeout(CALL_SECONDS):
                return await self._dispatch(sid, name, data)
        except Refused as err:
            return {"ok": False, "error": str(err), "field": err.field}
        except ValidationError as err:
            return _invalid(err)
        except Unauthorized:
            return {"ok": False, "error": "unauthorized", "field": "token", "reauth": True}
        except STORE_REFUSALS as err:
            log.warning("agent.store_refused", call=name, error=type(err).__name__)
            return {"ok": False, "error": "the store cannot hold this request; change it"}
        except STORE_ERRORS as err:
            log.warning("agent.store_unavailable", call=name, error=type(err).__name__)
            return UNAVAILABLE
        except Exception as err:  # noqa: BLE001 - a bug must not cost the client its answer
            log.error("agent.call_failed", call=name, error=type(err).__name__)
            return {"ok": False, "error": "internal error"}

    async def _dispatch(self, sid: str, event: str | None, data) -> dict:
        seat = self._seats.get(sid)
        if seat is None:
            return {"ok": False, "error": "not connected"}
        model, handler = self._events.get(event, (None, None))
        if handler is None:
            shown = event[:40] if event else repr(event)[:40]
            raise Refused(f"unknown event {shown!r}; see docs/agent-protocol.md", "event")
        if event != "auth" and time.time() >= seat.expires_at:
            return EXPIRED
        if time.monotonic() - seat.checked_at > SESSION_CHECK_SECONDS and not await self._still_alive(sid, seat):
            self._spawn(self.disconnect(sid))
            return ENDED
        payload = model.model_validate({} if data is None else data)
        return await handler(sid, self.app[DIRECTORY].current.agents[seat.user_id], payload)

    async def _still_alive(self, sid: str, seat: Seat) -> bool:
        """Look the socket's session up again (it may have ended on another node)."""
        async with self.app[DB].read() as conn:
            alive = await session_alive(conn, seat.session_id, seat.user_id)
        if alive and self._seats.get(sid) == seat:
            self._seats[sid] = Seat(seat.user_id, seat.session_id, seat.expires_at, time.monotonic())
        return alive

    async def _call(self, handler, sid, agent, payload) -> dict:
        """A call of chat.agents.calls' table: it gets the app, not the socket."""
        return await handler(self.app, agent, payload)

    async def _auth(self, sid, agent, data: AuthPayload) -> dict:
        """A fresh access token for this socket (after a refresh), so its calls go on being answered."""
        claims = self.app[TOKENS].verify(data.token)
        if claims.user_id != agent.id:
            raise Refused("this token is for another user; reconnect instead", "token")
        async with self.app[DB].read() as conn:
            if not await session_alive(conn, claims.session_id, claims.user_id):
                raise Unauthorized("session ended")
        await self._seat(sid, Seat.of(claims))
        return {"ok": True, "expires_at": claims.expires_at}

    async def _sync(self, sid, agent, data: SyncPayload) -> dict:
        async with self.app[DB].read() as conn:
            answer = await sync_for(conn, agent.id, dict(data.cursors), data.since)
            answer["queue"] = await queued_for(conn, self.app[DIRECTORY].current.queues_of.get(agent.id, ()))
            chosen = await chosen_number(conn, agent)
        answer["user"] = {"name": agent.name, "display_name": agent.display_name, "role": agent.role}
        answer["presence"] = self.app[PRESENCE].state(agent.id)
        answer["numbers"] = self.app[DIRECTORY].current.numbers_payload(agent, chosen)
        outcomes = self._outcomes()
        answer["outcomes"] = {"choices": list(outcomes.choices), "required": outcomes.required}
        answer["transfer_targets"] = self._targets(agent)
        answer["auto_select"] = bool(self.app[DIRECTORY].current.select_of.get(agent.id))
        return answer

    async def _send(self, sid, agent, req: SendRequest) -> dict:
        queued = await self.app[COMMIT].run(partial(store_send, agent=agent, req=req, directory=self.app[DIRECTORY].current))
        if not queued.repeated:
            if queued.head is not None:
                self.app[OUTBOX_WORKER].offer(queued.head)
            self.app[AUTOMATION].agent_replied(queued.message["conversation_id"])
            if queued.new_conversation:
                await self.app[HUB].emit(agent.id, "conversation", queued.conversation)
                self.app[AUTOMATION].lifecycle_changed()
            await self.app[HUB].emit(agent.id, "message", queued.message, skip_sid=sid)
        return {"ok": True, "message": queued.message, "conversation": queued.conversation}

    async def _presence(self, sid, agent, data: PresencePayload) -> dict:
        await self.app[COMMIT].run(partial(save_presence, user_id=agent.id, state=data.state))
        self.app[PRESENCE].choose(agent.id, data.state)
        await self.app[HUB].emit(agent.id, "presence", {"state": data.state}, skip_sid=sid)
        self._spawn(self._offer_waiting(agent.id))
        return {"ok": True, "state": data.state}

    async def _read(self, sid, agent, data: ReadPayload) -> dict:
        await self.app[COMMIT].run(partial(mark_read, user_id=agent.id, conversation_id=data.conversation_id, seq=data.seq))
        return {"ok": True}

    async def _present(self, sid, agent, data: PresentPayload) -> dict:
        unit = partial(set_presented, agent=agent, conversation_id=data.conversation_id, number=data.number,
                       directory=self.app[DIRECTORY].current)
        conv = await self.app[COMMIT].run(unit)
        await self.app[HUB].emit(agent.id, "conversation", conv, skip_sid=sid)
        return {"ok": True, "conversation": conv}

    async def _close(self, sid, agent, data: ClosePayload) -> dict:
        cid = data.conversation_id
        conv = await self.app[COMMIT].run(partial(close_conversation, agent=agent, conversation_id=cid,
                                                  outcome=data.outcome, outcomes=self._outcomes()))
        await self.app[HUB].emit(agent.id, "conversation", conv)
        self._spawn(self.app[AUTOMATION].handle(cid, Trigger("conversation_closed", {"outcome": conv["outcome"] or ""})))
        self._spawn(self._offer_waiting(agent.id))  # room for one more from the queues
        return {"ok": True, "conversation": conv}

    async def _reopen(self, sid, agent, data: ReopenPayload) -> dict:
        conv = await self.app[COMMIT].run(partial(reopen_conversation, agent=agent, conversation_id=data.conversation_id))
        await self.app[HUB].emit(agent.id, "conversation", conv, skip_sid=sid)
        self.app[AUTOMATION].lifecycle_changed()
        return {"ok": True, "conversation": conv}

    async def _snooze(self, sid, agent, data: SnoozePayload) -> dict:
        until = None if data.until is None else datetime.fromtimestamp(data.until, UTC)
        conv = await self.app[COMMIT].run(partial(snooze_conversation, agent=agent, conversation_id=data.conversation_id,
                                                  until=until))
        await self.app[HUB].emit(agent.id, "conversation", conv, skip_sid=sid)
        self.app[AUTOMATION].lifecycle_changed()
        return {"ok": True, "conversation": conv}

    async def _history(self, sid, agent, data: HistoryPayload) -> dict:
        async with self.app[DB].read() as conn:
            earlier = await earlier_conversations(conn, agent, data.conversation_id)
        return {"ok": True, "conversations": earlier}

    async def _transfer(self, sid, agent, data: TransferPayload) -> dict:
        unit = partial(transfer_conversation, agent=agent, conversation_id=data.conversation_id,
                       target=Target(data.to.user, data.to.team), note=data.note, directory=self.app[DIRECTORY].current,
                       teams=self.app[DIRECTORY].config.team_members(), presence=self.app[PRESENCE])
        done = await self.app[COMMIT].run(unit)
        await self._handed(done, Target(data.to.user, data.to.team), "transferred")
        self._spawn(self._offer_waiting(agent.id))  # room for one more from the queues
        log.info("conversation.transferred", conversation=data.conversation_id, by=agent.id,
                 to=data.to.user or f"team {data.to.team}", taken=done.holder is not None)
        return {"ok": True, "to": done.label, "waiting": done.holder is None}

    async def _default_number(self, sid, agent, data: DefaultNumberPayload) -> dict:
        """The agent's own default number for new conversations (None: back to the configured one)."""
        number = data.number
        if number is not None:
            try:
                number = normalize_number(number)
            except InvalidNumber as err:
                raise Refused(str(err), "number") from None
        if number is not None and number not in agent.may_present:  # checked here: a unit that raises fails its batch
            raise Refused(f"you may not present {number}; yours are: {', '.join(agent.may_present) or 'none'}", "number")
        await self.app[COMMIT].run(partial(choose_number, agent=agent, number=number))
        numbers = self.app[DIRECTORY].current.numbers_payload(agent, number)
        await self.app[HUB].emit(agent.id, "numbers", numbers, skip_sid=sid)
        return {"ok": True, "numbers": numbers}

    async def _board(self, sid, agent, data: BoardPayload) -> dict:
        may_supervise(agent)
        async with self.app[DB].read() as conn:
            seen = await board(conn, self.app[DIRECTORY].current, self.app[PRESENCE], Filters(**data.model_dump()))
        return {"ok": True, **seen}

    async def _assign(self, sid, agent, data: AssignPayload) -> dict:
        return await self._move(agent, data.conversation_id, Target(data.to.user, data.to.team))

    async def _take_over(self, sid, agent, data: MonitorPayload) -> dict:
        return await self._move(agent, data.conversation_id, Target(user=agent.name), taking_over=True)

    async def _move(self, agent, cid: int, target: Target, taking_over: bool = False) -> dict:
        unit = partial(move, supervisor=agent, conversation_id=cid, target=target, directory=self.app[DIRECTORY].current,
                       teams=self.app[DIRECTORY].config.team_members(), presence=self.app[PRESENCE], taking_over=taking_over)
        done = await self.app[COMMIT].run(unit)
        await self._handed(done, target, "supervisor")
        log.info("conversation.moved_by_supervisor", conversation=cid, by=agent.id, to=target.user or f"team {target.team}")
        return {"ok": True, "to": done.label, "waiting": done.holder is None, "conversation": done.conversation}

    async def _handed(self, done: Transferred, target: Target, reason: str) -> None:
        """After a transfer or a supervisor's move: the one who had it told, the one who has it given it
        (or its queue told), and one who is away: their away policy (chat.workers.automation)."""
        hub, cid = self.app[HUB], done.conversation["id"]
        if done.previous is not None and done.previous != done.holder:
            await hub.emit(done.previous, "unassigned", {"conversation_id": cid, "reason": reason, "to": done.label})
        if done.holder is not None:
            await hub.emit(done.holder, "conversation", done.conversation)
            await hub.emit(done.holder, "messages", done.messages)
        elif target.team:
            self.app[ROUTER].queue_changed(target.team)
        elif target.user and (to := self.app[DIRECTORY].current.by_name.get(target.user)) is not None:
            self.app[AUTOMATION].handed_to(done.conversation, to.id)

    async def _monitor(self, sid, agent, data: MonitorPayload) -> dict:
        """The conversation as it is, then live (`monitored` pushes) until `unmonitor` or another `monitor`."""
        may_supervise(agent)  # before the room: an agent never gets a copy
        await self._unmonitor(sid, agent, data)
        await self.enter_room(sid, watch_room(data.conversation_id))  # first: nothing pushed after the read is missed
        async with self.app[DB].read() as conn:
            try:
                seen = await monitor(conn, agent, data.conversation_id)
            except Refused:
                await self.leave_room(sid, watch_room(data.conversation_id))
                raise
        return {"ok": True, **seen}

    async def _unmonitor(self, sid, agent, data: Payload) -> dict:
        for watching in [r for r in self.rooms(sid) if isinstance(r, str) and r.startswith(WATCH)]:
            await self.leave_room(sid, watching)
        return {"ok": True}

    async def _list_targets(self, sid, agent, data: Payload) -> dict:
        return {"ok": True, **self._targets(agent)}

    def _targets(self, agent) -> dict:
        """Whom this agent may hand a conversation to: every other agent (with presence) and every team."""
        presence = self.app[PRESENCE]
        users = [{"name": a.name, "display_name": a.display_name, "presence": presence.state(a.id)}
                 for a in self.app[DIRECTORY].current.agents.values() if a.id != agent.id]
        return {"users": sorted(users, key=lambda u: (u["display_name"] or u["name"]).lower()),
                "teams": sorted(self.app[DIRECTORY].config.teams)}

    def _outcomes(self) -> Outcomes:
        settings = self.app[DIRECTORY].config.conversations
        return Outcomes(settings.outcomes, settings.require_outcome)

    async def _claim(self, sid, agent, data: ClaimPayload) -> dict:
        """Take a conversation waiting in a queue of this agent's (the admins' queue: any admin's)."""
        conv = await self.app[ROUTER].claim(agent.id, data.conversation_id)
        if conv is None:
            raise Refused(f"conversation {data.conversation_id} is not waiting in a queue of yours", "conversation_id")
        return {"ok": True, "conversation": conv}

    async def _offer_waiting(self, uid: int) -> None:
        """Give a ready agent what waits for them; a read first, since mostly nothing does."""
        try:
            if not self.app[PRESENCE].available(uid):
                return
            async with self.app[DB].read() as conn:
                waits = await anything_waits(conn, uid, self.app[DIRECTORY].current.queues_of.get(uid, ()))
            if waits and self.app[PRESENCE].available(uid):
                await self.app[ROUTER].assign_waiting(uid)
        except Exception as err:  # noqa: BLE001 - the conversations wait in the store; the next offer takes them
            log.warning("agent.offer_failed", user=uid, error=type(err).__name__)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _invalid(err: ValidationError) -> dict:
    """The first problem of a payload, naming its field (never echoing the value)."""
    first = err.errors(include_input=False, include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    message = first["msg"] if field else f"the payload must be a JSON object: {first['msg']}"
    return {"ok": False, "error": f"{field}: {first['msg']}" if field else message, "field": field}
