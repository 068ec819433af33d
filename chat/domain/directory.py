"""Who owns what: users, access numbers, callback numbers and routes, as the running process sees them.

Rules: the running configuration (chat.domain.running) is the source of users and numbers;
`write_directory` writes it into the database and returns an immutable `Directory` the rest of
the app reads without a query. Initial passwords are hashed with argon2 on first load, off the event loop and a few
at a time, and never overwritten later; a given `password_hash` is stored as it is. A start
reads each table once and writes only what changed, in batches (bench/startup.py).
Every access number has a route for new conversations: its user, a team's queue, or (a
shared callback number) the queue of the agents who may present it; a route with no one on
it is the admins' queue, so no conversation waits where nobody looks.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa
from argon2 import PasswordHasher

from chat.config import AccessNumberConfig, Config, Document, Problem, UserConfig
from chat.domain.conversations import ACTIVE, append_message
from chat.store import utcnow
from chat.store.tables import access_numbers, conversations, team_cursors, users
from gateway import PROVIDERS

hasher = PasswordHasher()
HASH_THREADS = max(1, len(os.sched_getaffinity(0)))  # one argon2 hash keeps one core busy for ~0.1 s
ADMINS = "@admins"  # the queue of what no route gives anyone (not a valid team name: it never clashes)


@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    display_name: str
    role: str
    personal_numbers: tuple[str, ...]
    may_present: tuple[str, ...]  # every number this agent may send from, default first
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def default_number(self) -> str | None:
        return self.may_present[0] if self.may_present else None


@dataclass(frozen=True)
class Route:
    """Where a new conversation on an access number goes: its user, else a queue's first ready member."""

    user: int | None = None
    queue: str = ADMINS  # a team, a shared number (the agents who may present it), or ADMINS


@dataclass(frozen=True)
class Selection:
    """An automatic selection rule, resolved (chat.domain.outbound: a new conversation's number)."""

    prefix: str | None
    number: str | None
    last_used: bool = False
    tag: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class TeamRule:
    """How a team's queue is dealt out (chat.domain.teams)."""

    members: tuple[int, ...]  # in the configuration's order: the round robin's
    distribution: str = "least_busy"  # round_robin | least_busy | offer_all
    capacity: int | None = None  # most open conversations a member takes from it at once


@dataclass(frozen=True)
class Directory:
    agents: dict[int, Agent]
    by_name: dict[str, Agent]
    owners: dict[str, int]  # access number -> user id (personal numbers)
    sms_numbers: frozenset[str]  # access numbers that take SMS
    connector_of: dict[str, str]  # number -> connector name
    teams_of: dict[int, tuple[str, ...]] = field(default_factory=dict)  # user id -> team names
    routes: dict[str, Route] = field(default_factory=dict)  # access number -> its route
    queues: dict[str, tuple[int, ...]] = field(default_factory=dict)  # queue -> the users who take from it
    queues_of: dict[int, tuple[str, ...]] = field(default_factory=dict)  # user id -> the queues they take from
    teams: dict[str, TeamRule] = field(default_factory=dict)  # team name -> its rule
    capacity_of: dict[int, int | None] = field(default_factory=dict)  # user id -> most open from team queues
    opt_out_scope: str = "number"  # number | account (chat.domain.optouts)
    hidden: frozenset[str] = frozenset()  # personal numbers never presented (their users' hide_personal)
    number_info: dict[str, dict] = field(default_factory=dict)  # callback number -> its language and category
    select_of: dict[int, tuple[Selection, ...]] = field(default_factory=dict)  # user id -> selection rules
    callback_names: dict[str, str] = field(default_factory=dict)  # callback name -> number
    config: Config | None = None  # the running configuration it was built from (chat.domain.running)

    def capacity(self, user_id: int) -> int | None:
        return self.capacity_of.get(user_id)

    def route(self, number: str) -> Route:
        """The route of new conversations on `number` (an unknown number's is the admins' queue)."""
        return self.routes.get(number, Route())

    def numbers_payload(self, agent: Agent, chosen: str | None = None) -> list[dict]:
        """The numbers an agent may present, for the client's picker (`chosen`: the default they chose)."""
        default = chosen or agent.default_number
        return [{"number": n, "label": agent.labels.get(n, n), "default": n == default,
                 "language": self.number_info.get(n, {}).get("language"), "category": self.number_info.get(n, {}).get("category"),
                 "mms": self.sends_mms(n)}
                for n in agent.may_present]

    def sends_mms(self, number: str) -> bool:
        """Whether a message from `number` may carry attachments: its connector sends MMS (the `send` rule)."""
        return self.media_refusal(self.connector_of.get(number, "")) is None

    def media_refusal(self, connector: str) -> str | None:
        """What the connector is, when it cannot send attachments (its provider's name, or SMPP); None when it can."""
        settings = next((c for c in self.config.connectors if c.name == connector), None) if self.config is not None else None
        if settings is None:
            return "not configured"
        provider = PROVIDERS.get(settings.type)
        return provider.media_refusal(settings) if provider is not None else settings.type.upper()  # an SMPP bind: SMS only


async def write_directory(conn, config: Config, hashes: Mapping[str, str]) -> tuple[Directory, list[Move]]:
    """Make the users, numbers and teams tables `config`'s, in `conn`'s transaction; the directory, and how many
    open conversations followed numbers that changed hands (`follow_numbers`). `hashes`: name -> argon2 hash of
    new users' passwords (chat.domain.running computes them before the transaction)."""
    ids = await _write_users(conn, config.users, dict(hashes))
    owner_was = await _write_numbers(conn, config, ids)
    await _write_teams(conn, config)
    directory = build_directory(config, ids)
    moved = await follow_numbers(conn, directory, owner_was, config.conversations.on_number_reassign)
    return directory, moved


async def user_ids(conn) -> dict[str, int]:
    """name -> id of every stored user."""
    return dict((await conn.execute(sa.select(users.c.name, users.c.id))).all())


def _initial_passwords(new: Iterable[UserConfig]) -> dict[str, str]:
    """name -> initial password of the new users that come without a password_hash."""
    return {u.name: u.password.get_secret_value() if u.password else "" for u in new if not u.password_hash}


async def hash_passwords(passwords: dict[str, str]) -> dict[str, str]:
    """name -> argon2 hash, computed in a pool of HASH_THREADS threads (argon2 releases the GIL)."""
    if not passwords:
        return {}
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="argon2") as pool:
        done = await asyncio.gather(*(loop.run_in_executor(pool, hasher.hash, p) for p in passwords.values()))
    return dict(zip(passwords, done))


USER_COLUMNS = (users.c.id, users.c.name, users.c.display_name, users.c.role, users.c.password_hash)
UPDATE_USER = users.update().where(users.c.id == sa.bindparam("b_id")).values(
    display_name=sa.bindparam("b_display_name"), role=sa.bindparam("b_role"), password_hash=sa.bindparam("b_hash"))


async def _write_users(conn, wanted: tuple[UserConfig, ...], hashes: dict[str, str]) -> dict[str, int]:
    """Insert new users and update changed ones; name -> id of every configured user."""
    rows = {r.name: r for r in (await conn.execute(sa.select(*USER_COLUMNS))).all()}
    changes = [c for c in (_user_change(u, rows[u.name]) for u in wanted if u.name in rows) if c]
    if changes:
        await conn.execute(UPDATE_USER, changes)
    ids = {u.name: rows[u.name].id for u in wanted if u.name in rows}
    new = [u for u in wanted if u.name not in rows]
    if new:
        hashes = hashes | await hash_passwords(_initial_passwords(u for u in new if u.name not in hashes))
        now = utcnow()
        added = await conn.execute(users.insert().returning(users.c.id, users.c.name),
                                   [_user_values(u, hashes) | {"name": u.name, "created_at": now} for u in new])
        ids.update({r.name: r.id for r in added.all()})
    return ids


def _user_values(user: UserConfig, hashes: dict[str, str]) -> dict:
    secret = user.password_hash.get_secret_value() if user.password_hash else hashes[user.name]
    return {"display_name": user.display_name or user.name, "role": user.role, "password_hash": secret}


def _user_change(user: UserConfig, row) -> dict | None:
    """The update a stored user needs to match the config, or None (an initial password is never re-applied)."""
    want = _user_values(user, {user.name: row.password_hash})
    if (want["display_name"], want["role"], want["password_hash"]) == (row.display_name, row.role, row.password_hash):
        return None
    return {"b_id": row.id, "b_display_name": want["display_name"], "b_role": want["role"], "b_hash": want["password_hash"]}


NUMBER_FIELDS = ("sms", "voice", "user_id", "extension", "connector", "team")
UPDATE_NUMBER = access_numbers.update().where(access_numbers.c.number == sa.bindparam("b_number")).values(
    **{f: sa.bindparam(f"b_{f}") for f in NUMBER_FIELDS})


# Open conversations follow their number when the configuration moves it (units of work, at start).
#
# Rules:
# - A number whose owner changed (another user, or a team instead): with `conversations.on_number_reassign:
#   move` (the default) its open and waiting conversations of the old owner go where the number's route
#   now sends new ones (its user, waiting for them until they are ready; else its queue); with `keep`
#   they stay with the old owner until closed.
# - A conversation held by, or waiting for, a user who is no longer configured always moves the same
#   way (whatever the rule): never orphaned. A note on each says where it came from.
# - Run once at start, in the transaction that writes the configuration (chat.domain.directory): a
#   second node starting with the same configuration finds nothing changed and moves nothing.
@dataclass(frozen=True)
class Move:
    """An open conversation that followed its number (or left a removed user): who had it, where it waits now."""

    conversation_id: int
    holder: int
    user: int | None  # waiting for this user
    queue: str | None  # else waiting in this queue
    label: str  # who or what it went to, as the notes say


async def follow_numbers(conn, directory: Directory, owner_was: Mapping[str, int | None], rule: str) -> list[Move]:
    """Move what must move (see Rules); the moves, for the pushes."""
    configured = set(directory.agents)
    changed = {n: old for n, old in owner_was.items() if old is not None and directory.route(n).user != old}
    holder = sa.func.coalesce(conversations.c.assigned_id, conversations.c.owner_id)
    gone = ~holder.in_(configured) if configured else sa.true()
    which = sa.and_(holder.is_not(None), gone)
    if rule == "move" and changed:
        which = sa.or_(which, *(sa.and_(conversations.c.access_number == n, holder == old) for n, old in changed.items()))
    rows = (await conn.execute(sa.select(conversations.c.id, conversations.c.access_number, holder.label("holder"))
                               .where(ACTIVE, which).order_by(conversations.c.id))).all()
    names = dict((await conn.execute(sa.select(users.c.id, sa.func.coalesce(users.c.display_name, users.c.name)))).all())
    now = utcnow()
    moves = []
    for row in rows:
        route = directory.route(row.access_number)
        if route.user is not None:
            values = {"owner_id": route.user, "assigned_id": None, "team": None, "state": "waiting"}
            label = names.get(route.user, "its new owner")
        else:
            values = {"owner_id": None, "assigned_id": None, "team": route.queue, "state": "waiting"}
            label = "the admins" if route.queue == ADMINS else f"queue {route.queue}"
        await conn.execute(conversations.update().where(conversations.c.id == row.id).values(**values, updated_at=now))
        await append_message(conn, row.id, direction="note", status="note", sender="", recipient="", connector="",
                             text=f"Moved from {names.get(row.holder, 'a former user')} to {label}: "
                                  f"{row.access_number} was reassigned in the configuration")
        moves.append(Move(row.id, row.holder, route.user, None if route.user is not None else route.queue, label))
    return moves


async def _write_numbers(conn, config: Config, ids: dict[str, int]) -> dict[str, int | None]:
    """Make the access_numbers table the configured numbers: delete, update and insert only the differences.
    Returns each configured number's owner before (None: none, or a new number)."""
    columns = [access_numbers.c.number] + [access_numbers.c[f] for f in NUMBER_FIELDS]
    have = {r.number: dict(r._mapping) for r in (await conn.execute(sa.select(*columns))).all()}
    owners = config.connectors_by_number()
    want = {n.number: _number_row(n, ids, owners) for n in config.access_numbers}
    gone = [n for n in have if n not in want]
    if gone:
        await conn.execute(access_numbers.delete().where(access_numbers.c.number.in_(gone)))
    changed = [{f"b_{k}": v for k, v in row.items()} for n, row in want.items() if n in have and have[n] != row]
    if changed:
        await conn.execute(UPDATE_NUMBER, changed)
    new = [row for n, row in want.items() if n not in have]
    if new:
        await conn.execute(access_numbers.insert(), new)
    return {n: have[n]["user_id"] if n in have else None for n in want}


async def _write_teams(conn, config: Config) -> None:
    """A round-robin cursor row for every configured team (kept for teams no longer configured: harmless)."""
    have = set((await conn.scalars(sa.select(team_cursors.c.team))).all())
    new = [{"team": name, "last_user_id": None, "updated_at": utcnow()} for name in config.teams if name not in have]
    if new:
        await conn.execute(team_cursors.insert(), new)


def _number_row(num: AccessNumberConfig, ids: dict[str, int], owners: Mapping) -> dict:
    conn = owners.get(num.number)
    return {
        "number": num.number, "sms": num.sms, "voice": num.voice, "extension": num.extension,
        "user_id": ids.get(num.user) if num.user else None, "connector": conn.name if conn else None,
        "team": num.team,
    }


def build_directory(config: Config, ids: dict[str, int]) -> Directory:
    """The in-memory directory for a validated config and its user ids."""
    owners = {n.number: ids[n.user] for n in config.access_numbers if n.user and n.sms}
    personal: dict[int, list[str]] = {}
    for number, owner in owners.items():
        personal.setdefault(owner, []).append(number)
    labels = {entry.number: entry.display_name or name for name, entry in config.callback_numbers.named.items()}
    team_numbers = {t: [n.number for n in config.access_numbers if n.team == t] for t in config.teams}
    active = [u for u in config.users if not u.disabled]  # a disabled user is no agent: like a removed one
    teams_of = {ids[u.name]: tuple(t for t, members in config.team_members().items() if u.name in members)
                for u in active}
    agents = {ids[u.name]: _agent(u, ids[u.name], tuple(personal.get(ids[u.name], ())), labels, config,
                                  [n for t in teams_of[ids[u.name]] for n in team_numbers[t]]) for u in active}
    queues = _queues(config, ids, agents)
    return Directory(
        agents=agents,
        by_name={a.name: a for a in agents.values()},
        owners=owners,
        sms_numbers=frozenset(n.number for n in config.access_numbers if n.sms),
        connector_of={num: c.name for num, c in config.connectors_by_number().items()},
        teams_of=teams_of,
        routes={n.number: _route(n, ids, queues) for n in config.access_numbers},
        queues=queues,
        queues_of=_queues_of(queues),
        teams={name: TeamRule(tuple(ids[m] for m in team.members), team.distribution, team.capacity)
               for name, team in config.teams.items()},
        capacity_of={ids[u.name]: _capacity(u, config) for u in active},
        opt_out_scope=config.opt_out_scope,
        hidden=frozenset(n for u in active if u.hide_personal for n in personal.get(ids[u.name], ())),
        number_info={e.number: {"language": e.language, "category": e.category} for e in config.callback_numbers.named.values()},
        callback_names={name: e.number for name, e in config.callback_numbers.named.items()},
        select_of={ids[u.name]: _rules(_selection_of(u, teams_of[ids[u.name]], config), config) for u in active},
        config=config,
    )


def _selection_of(user: UserConfig, teams: tuple[str, ...], config: Config) -> tuple:
    """A user's selection rules: their own, then their teams' (in the order of the configuration);
    the account's when neither the user nor any of their teams has rules."""
    team_rules = [rules for t in teams if t in config.teams and (rules := config.teams[t].select) is not None]
    if user.select is None and not team_rules:
        return config.callback_numbers.select
    return (*(user.select or ()), *(r for rules in team_rules for r in rules))


def _rules(rules, config: Config) -> tuple[Selection, ...]:
    return tuple(Selection(r.prefix, config.resolve_number(r.number) if r.number else None, r.last_used, r.tag, r.country)
                 for r in rules)


def _capacity(user: UserConfig, config: Config) -> int | None:
    """The user's own capacity, else the smallest of their teams' (none: no limit)."""
    if user.capacity is not None:
        return user.capacity
    caps = [t.capacity for t in config.teams.values() if user.name in t.members and t.capacity is not None]
    return min(caps) if caps else None


def _agent(user: UserConfig, uid: int, personal: tuple[str, ...], labels: dict[str, str], config: Config,
           team_numbers: list[str]) -> Agent:
    refs = [user.default_number] if user.default_number else []
    shown = () if user.hide_personal else personal  # hidden: customers see the default number instead
    refs += list(shown) + list(user.may_present) + team_numbers  # a team's number is answered from itself
    if config.callback_numbers.default:
        refs.append(config.callback_numbers.default)
    allowed = list(dict.fromkeys(n for n in (config.resolve_number(r) for r in refs) if n))
    names = {n: labels.get(n, 'personal' if n in personal else n) for n in allowed}
    return Agent(uid, user.name, user.display_name or user.name, user.role, personal, tuple(allowed), names)


def _queues(config: Config, ids: dict[str, int], agents: dict[int, Agent]) -> dict[str, tuple[int, ...]]:
    """Each queue and its members: teams, shared numbers without a route (who may present them), admins."""
    queues = {team: tuple(ids[m] for m in members) for team, members in config.team_members().items()}
    for num in config.access_numbers:
        if num.sms and not num.user and not num.team:
            queues[num.number] = tuple(a.id for a in agents.values() if num.number in a.may_present)
    queues[ADMINS] = tuple(a.id for a in agents.values() if a.role == "admin")
    return queues


def _route(num: AccessNumberConfig, ids: dict[str, int], queues: dict[str, tuple[int, ...]]) -> Route:
    if num.user:
        return Route(user=ids[num.user], queue=ADMINS)
    queue = num.team or num.number
    return Route(queue=queue if queues.get(queue) else ADMINS)


def _queues_of(queues: dict[str, tuple[int, ...]]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for queue, members in queues.items():
        for uid in members:
            out.setdefault(uid, []).append(queue)
    return {uid: tuple(names) for uid, names in out.items()}


def unrouted_numbers(config: Config, directory: Directory) -> list[str]:
    """The SMS numbers whose new conversations no route gives anyone but the admins (logged at each change)."""
    return [n.number for n in config.access_numbers if n.sms and directory.route(n.number) == Route()]


def unrouted(config: Config) -> list[int]:
    """Indexes of the SMS numbers whose new conversations no one but an admin would get (config check)."""
    directory = build_directory(config, {u.name: i for i, u in enumerate(config.users, 1)})
    wanted = set(unrouted_numbers(config, directory))
    return [i for i, n in enumerate(config.access_numbers) if n.number in wanted]


def config_warnings(config: Config, doc: Document) -> Iterator[Problem]:
    """What a checked file allows but was hardly meant: an SMS number whose new conversations no route gives anyone."""
    for i in unrouted(config):
        num = config.access_numbers[i]
        fix = f"give team {num.team!r} members" if num.team else \
            "give it a user or a team, or let agents present it (may_present, callback_numbers.default)"
        yield doc.problem(("access_numbers", i), f"{num.number} takes SMS but no one would get its new "
                                                 f"conversations (they would wait for an admin): {fix}")


async def password_of(conn, name: str):
    """The user's id and password hash, by name (None for an unknown name)."""
    return (await conn.execute(sa.select(users.c.id, users.c.password_hash).where(users.c.name == name))).first()
