"""Scenarios at work: conversation events into the engine, its decisions out through effects.

Rules: one execution per conversation across the cluster: each event is handled in one unit of
work under the conversation's lock (chat.domain.scenario_state), which reads the run any node
stored, runs the engine and saves its result with the store's side of its effects; on this node
a conversation's events are also handled one at a time in the order they came. Opt-out keywords
pre-empt whatever runs. Waits, timers and no-agent-reply deadlines live in the store, fire after
a restart, and fire once however many nodes see them due. Nothing here remembers which
conversations have runs: the store does, so an answer that reaches any node resumes the wait.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import cache, partial
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from chat.config import AwayConfig
from chat.domain.away import apply_away, arm, due_away, fire_away, next_away_due
from chat.domain.directory import Directory
from chat.domain.effects import After
from chat.domain.inbound import Stored
from chat.domain.lifecycle import INACTIVE, close_inactive, due_lifecycle, next_lifecycle_due, wake_snoozed
from chat.domain.scenario_state import Decision, Due, due_now, next_due, set_reply_due, step
from chat.store import Database, as_utc, utcnow
from chat.store.commit import GroupCommit
from chat.store.context import COMMIT, DB
from chat.workers.crm import HTTP
from chat.workers.hub import HUB, Hub
from chat.workers.presence import PRESENCE, Presence
from chat.workers.routing import ROUTER, Router
from chat.workers.running import DIRECTORY, RunningConfig
from chat.workers.scenario_files import ScenarioFiles
from chat.workers.tasks import cancel, wait_set
from chat.workers.wake import CRM, OUTBOX, TIMERS, WAKE, Wake
from scenarios import CallResult, Route, Scenario, Timeout, Trigger, classify
from scenarios.steps import HttpStep, WaitStep

log = structlog.get_logger()
MIN_PAUSE, MAX_PAUSE = 0.05, 30.0  # seconds between looks at stored deadlines


@cache
def may_wait(scenario: Scenario) -> bool:
    """Whether a run of this scenario can be stored (it waits for a reply or a call result)."""
    return any(isinstance(s, WaitStep | HttpStep) for block in scenario.blocks.values() for s in block)


class Automation:
    def __init__(self, *, db: Database, commit: GroupCommit, running: RunningConfig, presence: Presence,
                 hub: Hub, router: Router, http: aiohttp.ClientSession, wake: Wake, files: ScenarioFiles):
        self.db, self.commit, self.running = db, commit, running
        self.configure(running.current)
        running.on_change(self.configure)
        self.presence, self.hub, self.router, self.http, self.wake, self.files = presence, hub, router, http, wake, files
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)  # this node's order, not the cluster's lock
        self._tasks: set[asyncio.Task] = set()
        self._wake = wake.event(TIMERS)

    @property
    def directory(self) -> Directory:
        return self.running.current

    def configure(self, directory: Directory) -> None:
        """What this worker derives from the running configuration, rebuilt whenever it changes."""
        config = directory.config
        assert config is not None
        self.teams = config.team_members()
        self.inactivity = {n.number: n.inactivity_close_seconds for n in config.access_numbers
                           if n.inactivity_close_seconds}  # access number -> inactivity_close_seconds
        self.away = {n.number: n.away for n in config.access_numbers if n.away}  # access number -> its away policies
        away_of_user: dict[int, AwayConfig] = {}  # user id -> the policy of the first number they own that has one
        for number, policy in self.away.items():
            owner = directory.owners.get(number)
            if owner is not None:
                away_of_user.setdefault(owner, policy)
        self.away_of_user = away_of_user

    # -- events in -----------------------------------------------------------------------
    def inbound(self, stored: Stored) -> None:
        """A customer's message was stored and routed: run its scenario events, if it has any."""
        if stored.duplicate:
            return
        row: Any = stored.row  # the conversation and contact row ingest read
        assert stored.message_row is not None
        cid, text = row.id, stored.message_row["text"]
        if stored.new_conversation and row.access_number in self.inactivity:
            self._wake.set()  # a new idle deadline, maybe earlier than the one the timers sleep until
        message = {"text": text, "id": stored.message_row["id"]}
        kind = classify(text)
        if kind:
            self._spawn(self.handle(cid, Trigger(kind, message), optout=True))
            return
        bound = self.files.for_number(row.access_number)
        unavailable = stored.new_conversation and stored.waiting
        # A scenario of the number's own that says what to do when the agent is unavailable overrides the
        # number's away policy there (the built-in default's away_reply and backup_user run beside it).
        decides = (unavailable and bound is not None and bound.scenario.name != "default"
                   and bound.scenario.block_for("agent_unavailable", message) is not None)
        self._check_away(row, stored.message_row["seq"], away=not decides)  # not for STOP and the like: compliance answers those
        if bound is None:
            return
        events = [Trigger("conversation_started", message)] if stored.new_conversation else []
        if unavailable:
            events.append(Trigger("agent_unavailable", message))
        events.append(Trigger("message_received", message))
        if stored.new_conversation or not may_wait(bound.scenario):  # no run can be stored: no task, no query
            events = [e for e in events if bound.scenario.block_for(e.name, e.data)]
        due = bound.scenario.no_agent_reply_after
        if events or due:
            self._spawn(self._inbound(cid, events, due))

    def agent_replied(self, conversation_id: int) -> None:
        self._spawn(self.commit.run(partial(set_reply_due, cid=conversation_id, at=None)))

    async def _inbound(self, cid: int, events: list, due) -> None:
        for event in events:
            await self.handle(cid, event)
        if due:
            await self.commit.run(partial(set_reply_due, cid=cid, at=utcnow() + due))
            self._wake.set()

    async def handle(self, cid: int, event, optout: bool = False, due: Due | None = None) -> None:
        """Feed one event to the conversation's scenario and carry out what it decides (`due`: the
        stored deadline it comes from, fired only if this unit consumes it)."""
        decide = partial(self._decide, event=event, optout=optout)
        async with self._locks[cid]:
            after = await self.commit.run(partial(step, conversation_id=cid, decide=decide, directory=self.directory,
                                                  teams=self.teams, due=due, available=self.presence.available))
        if after is not None:
            await self._after(cid, after)

    def policy_of(self, conv) -> AwayConfig | None:
        """The away policy a conversation follows: handed to a user who does not own its number (a transfer,
        a supervisor's assign, a forward), that user's own (the policy of a number they own) when they
        have one; otherwise its number's."""
        owner = conv.owner_id
        if owner is not None and owner != self.directory.owners.get(conv.access_number) and owner in self.away_of_user:
            return self.away_of_user[owner]
        return self.away.get(conv.access_number)

    def _check_away(self, row, seq: int, away: bool = True) -> None:
        """The conversation's away policy, on a customer's text (chat.domain.away checks again); `away`
        False: its no-reply deadline only (the scenario decides what an agent's absence does)."""
        policy = self.policy_of(row)
        holder = row.assigned_id or row.owner_id
        if policy is None or holder is None:
            return
        if policy.reassign_after_seconds:  # answered in time, or reassigned
            self._spawn(self._arm(row.id, policy.reassign_after_seconds, seq))
        if away:
            self._when_away(row.id, holder, policy, seq, on_text=True)

    def handed_to(self, conv: dict, user_id: int) -> None:
        """A conversation was transferred or assigned to a user who is away: it follows their away policy
        now (a forward goes on at once, a hold's escalation is armed; an auto-reply waits for a text)."""
        policy = self.policy_of(_Row(conv["id"], conv["access_number"], user_id))
        if policy is not None:
            self._when_away(conv["id"], user_id, policy, int(conv.get("last_seq") or 0), on_text=False)

    def _when_away(self, cid: int, holder: int, policy: AwayConfig, seq: int, on_text: bool) -> None:
        if self.presence.available(holder):
            return
        state = self.presence.state(holder)
        action = getattr(policy, state, None) if state in ("offline", "not_ready") else None
        if action is None or (action.action == "auto_reply" and not on_text):
            return
        if action.action != "hold":
            self._spawn(self._away(cid, holder, state, action))
        elif action.escalate_after_seconds:
            self._spawn(self._arm(cid, action.escalate_after_seconds, seq))

    async def _arm(self, cid: int, seconds: float, seq: int) -> None:
        await self.commit.run(partial(arm, conversation_id=cid, seconds=seconds, seq=seq))
        self._wake.set()  # the timers look at the new deadline

    async def _away(self, cid: int, holder: int, state: str, action) -> None:
        unit = partial(apply_away, conversation_id=cid, holder=holder, state=state, action=action, directory=self.directory,
                       teams=self.teams, presence=self.presence)
        after = await self.commit.run(unit)
        if after is not None:
            log.info("conversation.away_policy", conversation=cid, state=state, action=action.action)
            await self._after(cid, after)

    def _decide(self, conv, row, event, optout: bool) -> Decision | None:
        """The engine's decision on `event`, inside the unit that holds the conversation's lock (it awaits nothing)."""
        bound = self.files.optout if optout else self.files.for_number(conv.access_number)
        if bound is None:
            return None
        run = None if optout else (row.run if row else None)
        result = bound.engine.handle(run, event, self._facts(conv, event, bound), utcnow())
        result = replace(result, effects=tuple(e for e in result.effects if not self._routed_already(conv, e)))
        if not result.effects and result.run is None and row is None:
            return None  # nothing ran and nothing to keep
        return Decision(bound.scenario.name, result, compliance=optout, preempt=optout)

    def _routed_already(self, conv, effect) -> bool:
        """A route to whoever has the conversation now changes nothing."""
        if not isinstance(effect, Route) or conv.assigned_id is None or conv.state == "closed":
            return False
        directory = self.directory
        target = directory.owners.get(conv.access_number) if effect.target == "owner" else \
            getattr(directory.by_name.get(effect.name or ""), "id", None) if effect.target == "user" else None
        return target == conv.assigned_id

    def _facts(self, conv, event, bound) -> dict:
        owner = self.directory.agents.get(conv.owner_id) if conv.owner_id else None
        data = event.data if isinstance(event, Trigger) else {}
        return {
            "contact": {"number": conv.contact_number, "name": conv.contact_name, "fields": dict(conv.contact_fields or {})},
            "conversation": {"id": conv.id, "access_number": conv.access_number, "tags": list(conv.tags or []),
                             "new": conv.last_seq <= 1, "outcome": conv.outcome or ""},
            "message": {"text": data.get("text", ""), "id": data.get("id")},
            "owner": {"name": owner.name if owner else "", "display_name": owner.display_name if owner else "",
                      "presence": self.presence.state(owner.id) if owner else "offline"},
            "params": dict(bound.scenario.params),
        }

    async def _after(self, cid: int, after: After) -> None:
        for user, event, payload in after.pushes:
            await self.hub.emit(user, event, payload)
        for team in dict.fromkeys(after.queues):
            self.router.queue_changed(team)
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

    # -- stored deadlines -------------------------------------------------------------------
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
            await wait_set(self._wake, pause)

    def lifecycle_changed(self) -> None:
        """A snooze was set, a conversation reopened or started: look again at when the next deadline is."""
        self._wake.set()

    async def _next_due(self) -> float:
        async with self.db.read() as conn:
            times = [await next_due(conn), await next_lifecycle_due(conn, self.inactivity),
                 await next_away_due(conn)]
        pending = [as_utc(t) for t in times if t is not None]
        when = min(pending) if pending else None
        if when is None:
            return MAX_PAUSE
        return min(MAX_PAUSE, max(MIN_PAUSE, (as_utc(when) - utcnow()).total_seconds()))

    async def _fire_due(self) -> None:
        async with self.db.read() as conn:
            due = await due_now(conn, utcnow())
        for cid in due.waits:
            await self.handle(cid, Timeout(), due=Due("wait"))
        for timer in due.timers:
            await self.handle(timer.conversation_id, Trigger("timer", {"name": timer.name}), due=Due("timer", timer.id))
        for cid in due.silent:
            await self.handle(cid, Trigger("no_agent_reply"), due=Due("reply"))
        await self._fire_lifecycle()

    async def _fire_lifecycle(self) -> None:
        """Snoozes that end and idle conversations to close (chat.domain.lifecycle: each once across nodes)."""
        now = utcnow()
        async with self.db.read() as conn:
            snoozed, idle = await due_lifecycle(conn, now, self.inactivity)
        for cid in snoozed:
            woken = await self.commit.run(partial(wake_snoozed, conversation_id=cid, now=now))
            if woken is not None and woken[0] is not None:
                await self.hub.emit(woken[0], "conversation", woken[1])
        async with self.db.read() as conn:
            away_due = await due_away(conn, now)
        for cid in away_due:
            unit = partial(fire_away, conversation_id=cid, now=now, policy_of=self.policy_of, directory=self.directory,
                           teams=self.teams, presence=self.presence)
            after = await self.commit.run(unit)
            if after is not None:
                log.info("conversation.away_deadline", conversation=cid)
                await self._after(cid, after)
        for cid, number in idle:
            seconds = self.inactivity.get(number)
            if seconds is None:
                continue
            closed = await self.commit.run(partial(close_inactive, conversation_id=cid, idle_seconds=seconds, now=now))
            if closed is None:
                continue
            log.info("conversation.closed_inactive", conversation=cid, after_seconds=seconds)
            if closed[0] is not None:
                await self.hub.emit(closed[0], "conversation", closed[1])
            self._spawn(self.handle(cid, Trigger("conversation_closed", {"outcome": INACTIVE})))

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


@dataclass(frozen=True)
class _Row:
    """What policy_of reads of a conversation."""

    id: int
    access_number: str
    owner_id: int | None


AUTOMATION = web.AppKey("automation", Automation)


async def automation_context(app: web.Application):
    """Scenario files (a broken one stops start-up here), the scenario runner and its timers."""
    hub = app[HUB]

    async def notify_admins(text: str) -> None:
        """A notice on every admin's screen (the caller logs it)."""
        for agent in app[DIRECTORY].current.agents.values():
            if agent.role == "admin":
                await hub.emit(agent.id, "notice", {"level": "error", "text": text})

    files = ScenarioFiles(app[DIRECTORY].config, notify_admins)
    app[DIRECTORY].on_change(lambda _: files.configure(app[DIRECTORY].config))
    automation = app[AUTOMATION] = Automation(
        db=app[DB], commit=app[COMMIT], running=app[DIRECTORY], presence=app[PRESENCE],
        hub=hub, router=app[ROUTER], http=app[HTTP], wake=app[WAKE], files=files)
    tasks = [asyncio.create_task(automation.run_timers(), name="timers"), asyncio.create_task(files.watch(), name="scenario-files")]
    yield
    await cancel(tasks)
    await automation.stop()
