"""Scenarios at work: conversation events into the engine, its decisions out through effects.

Rules: one execution per conversation, events for a conversation handled one at a time in the
order they came; opt-out keywords pre-empt whatever runs; the run's state, wake-up time and the
store's side of its effects are committed together; timers live in the store and fire after a
restart.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import replace
from functools import partial
from types import SimpleNamespace
from typing import Any

import aiohttp
import sqlalchemy as sa
import structlog
from aiohttp import web

from chat.domain.directory import DIRECTORY, Directory
from chat.domain.effects import After, apply_result
from chat.domain.inbound import Stored
from chat.store import Database, as_utc, utcnow
from chat.store.commit import GroupCommit
from chat.store.context import COMMIT, CONFIG, DB
from chat.store.fast import hot
from chat.store.tables import contacts, conversations, scenario_runs, scenario_timers
from chat.workers.crm import HTTP
from chat.workers.hub import HUB, Hub
from chat.workers.presence import PRESENCE, Presence
from chat.workers.routing import ROUTER, Router
from chat.workers.scenario_files import ScenarioFiles
from chat.workers.tasks import cancel
from chat.workers.wake import CRM, OUTBOX, WAKE, Wake
from scenarios import CallResult, Route, Timeout, Trigger, classify

log = structlog.get_logger()
MIN_PAUSE, MAX_PAUSE = 0.05, 30.0  # seconds between looks at stored timers


class Automation:
    def __init__(self, *, db: Database, commit: GroupCommit, directory: Directory, teams: dict, presence: Presence,
                 hub: Hub, router: Router, http: aiohttp.ClientSession, wake: Wake, files: ScenarioFiles):
        self.db, self.commit, self.directory, self.teams = db, commit, directory, teams
        self.presence, self.hub, self.router, self.http, self.wake, self.files = presence, hub, router, http, wake, files
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._running: set[int] = set()  # conversations with a run in the store

    async def load(self) -> None:
        """Learn which conversations have runs, so events for the others can skip the store."""
        async with self.db.read() as conn:
            self._running = set((await conn.scalars(sa.select(scenario_runs.c.conversation_id))).all())

    # -- events in -----------------------------------------------------------------------
    def inbound(self, stored: Stored) -> None:
        """A customer's message was stored and routed: run its scenario events, if it has any."""
        if stored.duplicate:
            return
        row: Any = stored.row  # the conversation and contact row ingest read
        assert stored.message_row is not None
        cid, text = row.id, stored.message_row["text"]
        message = {"text": text, "id": stored.message_row["id"]}
        kind = classify(text)
        if kind:
            self._spawn(self.handle(cid, Trigger(kind, message), optout=True))
            return
        bound = self.files.for_number(row.access_number)
        events = [Trigger("conversation_started", message)] if stored.new_conversation else []
        if stored.new_conversation and stored.waiting:
            events.append(Trigger("agent_unavailable", message))
        events.append(Trigger("message_received", message))
        if cid not in self._running:  # most messages: nothing to run, no task, no query
            events = [e for e in events if bound and bound.scenario.block_for(e.name, e.data)]
        due = bound.scenario.no_agent_reply_after if bound else None
        if events or due:
            self._spawn(self._inbound(cid, events, stored.row, due))

    def agent_replied(self, conversation_id: int) -> None:
        self._spawn(self._clear_reply_due(conversation_id))

    async def _inbound(self, cid: int, events: list, seed, due) -> None:
        for event in events:  # `seed` is fresh until something is committed for this conversation
            if await self.handle(cid, event, seed=seed if cid not in self._running else None):
                seed = None
        if due:
            await self.commit.run(partial(_reply_due, cid=cid, at=utcnow() + due))
            self._wake.set()

    async def handle(self, cid: int, event, optout: bool = False, seed=None) -> bool:
        """Feed one event to the conversation's scenario and carry out what it decides;
        whether anything was committed. `seed`: the conversation as just read, if no run is stored."""
        async with self._locks[cid]:
            after = await self._step(cid, event, optout, seed)
        if after is not None:
            await self._after(cid, after)
        return after is not None

    async def _read(self, cid: int):
        async with self.db.read() as conn:
            conv: Any = (await conn.execute(sa.select(conversations).where(conversations.c.id == cid))).first()
            contact = (await conn.execute(sa.select(contacts).where(contacts.c.id == conv.contact_id))).first()
            row = (await conn.execute(sa.select(scenario_runs).where(scenario_runs.c.conversation_id == cid))).first()
        return conv, contact, row

    async def _step(self, cid: int, event, optout: bool, seed=None) -> After | None:
        if seed is not None and not optout:
            conv, row = seed, None
            contact = SimpleNamespace(number=seed.contact_number, name=seed.contact_name, fields=seed.contact_fields)
        else:
            conv, contact, row = await self._read(cid)
        bound = self.files.optout if optout else self.files.for_number(conv.access_number)
        if bound is None:
            return None
        run = None if optout else (row.run if row else None)
        result = bound.engine.handle(run, event, self._facts(conv, contact, event, bound), utcnow())
        if result.run is None:
            self._running.discard(cid)
        else:
            self._running.add(cid)
        result = replace(result, effects=tuple(e for e in result.effects if not self._routed_already(conv, e)))
        if not result.effects and result.run is None and row is None:
            return None  # nothing ran and nothing to keep
        unit = partial(apply_result, conversation_id=cid, scenario=bound.scenario.name, result=result,
                       directory=self.directory, teams=self.teams, compliance=optout)
        if optout:  # pre-empts the running execution and every wait it had
            unit = partial(_preempt_then, unit=unit, conversation_id=cid)
        return await self.commit.run(unit)

    def _routed_already(self, conv, effect) -> bool:
        """A route to whoever has the conversation now changes nothing."""
        if not isinstance(effect, Route) or conv.assigned_id is None or conv.state == "closed":
            return False
        directory = self.directory
        target = directory.owners.get(conv.access_number) if effect.target == "owner" else \
            getattr(directory.by_name.get(effect.name or ""), "id", None) if effect.target == "user" else None
        return target == conv.assigned_id

    def _facts(self, conv, contact, event, bound) -> dict:
        owner = self.directory.agents.get(conv.owner_id) if conv.owner_id else None
        data = event.data if isinstance(event, Trigger) else {}
        return {
            "contact": {"number": contact.number, "name": contact.name, "fields": dict(contact.fields or {})},
            "conversation": {"id": conv.id, "access_number": conv.access_number, "tags": list(conv.tags or []),
                             "new": conv.last_seq <= 1},
            "message": {"text": data.get("text", ""), "id": data.get("id")},
            "owner": {"name": owner.name if owner else "", "display_name": owner.display_name if owner else "",
                      "presence": self.presence.state(owner.id) if owner else "offline"},
            "params": dict(bound.scenario.params),
        }

    async def _after(self, cid: int, after: After) -> None:
        for user, event, payload in after.pushes:
            await self.hub.emit(user, event, payload)
        for user in dict.fromkeys(after.offers):
            if self.presence.available(user):
                await self.router.assign_waiting(user)
        if after.queued:
            self.wake(OUTBOX)
        if after.activities:
            self.wake(CRM)
        for call in after.calls:
            self._spawn(self._call(cid, call))
        if after.closed:
            self._spawn(self.handle(cid, Trigger("conversation_closed")))
        self._wake.set()

    async def _call(self, cid: int, call) -> None:
        status, body = await http_call(self.http, call)
        await self.handle(cid, CallResult(call.call_id, status, body))

    # -- no agent reply ---------------------------------------------------------------------
    async def _clear_reply_due(self, cid: int) -> None:
        await self.commit.run(partial(_reply_due, cid=cid, at=None))

    # -- timers -----------------------------------------------------------------------------
    async def run_timers(self) -> None:
        """Fire due waits, named timers and no-agent-reply deadlines; they live in the store.
        Sleeps until the earliest of them (or until something new is stored), not on a tick."""
        while True:
            pause = MAX_PAUSE
            try:
                await self._fire_due()
                self._wake.clear()
                pause = await self._next_due()
            except Exception:  # noqa: BLE001 - tried again after the pause
                log.exception("scenario.timers_failed")
            try:
                await asyncio.wait_for(self._wake.wait(), pause)
            except TimeoutError:
                pass

    async def _next_due(self) -> float:
        async with self.db.read() as conn:
            times = [await conn.scalar(sa.select(sa.func.min(column))) for column in (
                scenario_runs.c.wake_at, scenario_timers.c.at, conversations.c.reply_due_at)]
        pending = [as_utc(t) for t in times if t is not None]
        if not pending:
            return MAX_PAUSE
        return min(MAX_PAUSE, max(MIN_PAUSE, (min(pending) - utcnow()).total_seconds()))

    async def _fire_due(self) -> None:
        now = utcnow()
        async with self.db.read() as conn:
            waits = (await conn.scalars(sa.select(scenario_runs.c.conversation_id).where(scenario_runs.c.wake_at <= now))).all()
            timers = (await conn.execute(sa.select(scenario_timers).where(scenario_timers.c.at <= now))).all()
            silent = (await conn.scalars(sa.select(conversations.c.id).where(
                conversations.c.reply_due_at <= now, conversations.c.state != "closed"))).all()
        for cid in waits:
            await self.handle(cid, Timeout())
        for timer in timers:
            await self.commit.run(partial(_drop_timer, timer_id=timer.id))
            await self.handle(timer.conversation_id, Trigger("timer", {"name": timer.name}))
        for cid in silent:
            await self._clear_reply_due(cid)
            await self.handle(cid, Trigger("no_agent_reply"))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception():
            log.error("scenario.failed", error=repr(task.exception()))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def http_call(session: aiohttp.ClientSession, call) -> tuple[int, object]:
    """Perform a scenario's HTTP call; status 0 for a network error or timeout."""
    try:
        timeout = aiohttp.ClientTimeout(total=call.timeout)
        async with session.request(call.method, call.url, headers=dict(call.headers), json=call.body,
                                   timeout=timeout) as answer:
            text = await answer.text()
            try:
                return answer.status, await answer.json(content_type=None) if text else None
            except ValueError:
                return answer.status, text
    except (aiohttp.ClientError, TimeoutError) as err:
        log.warning("scenario.call_failed", url=call.url, error=repr(err))
        return 0, None


async def _preempt_then(conn, unit, conversation_id: int):
    await conn.execute(scenario_runs.delete().where(scenario_runs.c.conversation_id == conversation_id))
    await conn.execute(scenario_timers.delete().where(scenario_timers.c.conversation_id == conversation_id))
    await conn.execute(conversations.update().where(conversations.c.id == conversation_id).values(reply_due_at=None))
    return await unit(conn)


SET_REPLY_DUE = hot(conversations.update().where(
    conversations.c.id == sa.bindparam("cid"), conversations.c.reply_due_at.is_(None),
).values(reply_due_at=sa.bindparam("at")))
CLEAR_REPLY_DUE = hot(conversations.update().where(conversations.c.id == sa.bindparam("cid")).values(reply_due_at=None))


async def _reply_due(conn, cid: int, at) -> None:
    """Set the no_agent_reply deadline (if none is set), or clear it (at=None)."""
    await conn.execute(CLEAR_REPLY_DUE if at is None else SET_REPLY_DUE, {"cid": cid, "at": at})


async def _drop_timer(conn, timer_id: int) -> None:
    await conn.execute(scenario_timers.delete().where(scenario_timers.c.id == timer_id))


AUTOMATION = web.AppKey("automation", Automation)


async def automation_context(app: web.Application):
    """Scenario files (a broken one stops start-up here), the scenario runner and its timers."""
    hub = app[HUB]

    async def notify_admins(text: str) -> None:
        """A notice on every admin's screen (the caller logs it)."""
        for agent in app[DIRECTORY].agents.values():
            if agent.role == "admin":
                await hub.emit(agent.id, "notice", {"level": "error", "text": text})

    config = app[CONFIG]
    files = ScenarioFiles(config, notify_admins)
    automation = app[AUTOMATION] = Automation(
        db=app[DB], commit=app[COMMIT], directory=app[DIRECTORY], teams=config.teams, presence=app[PRESENCE],
        hub=hub, router=app[ROUTER], http=app[HTTP], wake=app[WAKE], files=files)
    await automation.load()
    tasks = [asyncio.create_task(automation.run_timers(), name="timers"), asyncio.create_task(files.watch(), name="scenario-files")]
    yield
    await cancel(tasks)
    await automation.stop()
