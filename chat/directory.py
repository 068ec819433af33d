"""Who owns what: users, access numbers and callback numbers, as the running process sees them.

Rules: the configuration file is the source of users and numbers; `sync_directory` writes it
into the database (initial passwords hashed with argon2 on first load, never overwritten
later) and returns an immutable `Directory` the rest of the app reads without a query.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from argon2 import PasswordHasher

from chat.config import Config, UserConfig
from chat.store import Database, utcnow
from chat.store.tables import access_numbers, users

hasher = PasswordHasher()


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
class Directory:
    agents: dict[int, Agent]
    by_name: dict[str, Agent]
    owners: dict[str, int]  # access number -> user id (personal numbers)
    sms_numbers: frozenset[str]  # access numbers that take SMS
    connector_of: dict[str, str]  # number -> connector name
    teams_of: dict[int, tuple[str, ...]] = field(default_factory=dict)  # user id -> team names

    def numbers_payload(self, agent: Agent) -> list[dict]:
        """The numbers an agent may present, for the client's picker."""
        default = agent.default_number
        return [{"number": n, "label": agent.labels.get(n, n), "default": n == default} for n in agent.may_present]


async def sync_directory(db: Database, config: Config) -> Directory:
    """Write the configured users and numbers into the database and return the directory."""
    async with db.write() as conn:
        ids = {u.name: await _upsert_user(conn, u) for u in config.users}
        await conn.execute(access_numbers.delete())
        rows = [_number_row(n, ids, config) for n in config.access_numbers]
        if rows:
            await conn.execute(access_numbers.insert(), rows)
    return build_directory(config, ids)


async def _upsert_user(conn, user: UserConfig) -> int:
    row = (await conn.execute(sa.select(users.c.id).where(users.c.name == user.name))).first()
    values = {"display_name": user.display_name or user.name, "role": user.role}
    if user.password_hash:
        values["password_hash"] = user.password_hash.get_secret_value()
    if row:
        await conn.execute(users.update().where(users.c.id == row.id).values(**values))
        return row.id
    if "password_hash" not in values:  # hash only what must be hashed (argon2 costs ~0.1 s a user)
        values["password_hash"] = hasher.hash(user.password.get_secret_value() if user.password else "")
    result = await conn.execute(users.insert().values(name=user.name, created_at=utcnow(), **values))
    return result.inserted_primary_key[0]


def _number_row(num, ids: dict[str, int], config: Config) -> dict:
    conn = config.connector_of(num.number)
    return {
        "number": num.number, "sms": num.sms, "voice": num.voice, "extension": num.extension,
        "user_id": ids.get(num.user) if num.user else None, "connector": conn.name if conn else None,
    }


def build_directory(config: Config, ids: dict[str, int]) -> Directory:
    """The in-memory directory for a validated config and its user ids."""
    owners = {n.number: ids[n.user] for n in config.access_numbers if n.user and n.sms}
    labels = {num: name for name, num in config.callback_numbers.named.items()}
    agents = {ids[u.name]: _agent(u, ids[u.name], owners, labels, config) for u in config.users}
    return Directory(
        agents=agents,
        by_name={a.name: a for a in agents.values()},
        owners=owners,
        sms_numbers=frozenset(n.number for n in config.access_numbers if n.sms),
        connector_of={num: c.name for c in config.connectors for num in c.numbers},
        teams_of={ids[u.name]: tuple(t for t, members in config.teams.items() if u.name in members) for u in config.users},
    )


def _agent(user: UserConfig, uid: int, owners: dict[str, int], labels: dict[str, str], config: Config) -> Agent:
    personal = tuple(n for n, owner in owners.items() if owner == uid)
    refs = [user.default_number] if user.default_number else []
    refs += list(personal) + list(user.may_present)
    if config.callback_numbers.default:
        refs.append(config.callback_numbers.default)
    allowed = list(dict.fromkeys(n for n in (config.resolve_number(r) for r in refs) if n))
    names = {n: labels.get(n, 'personal' if n in personal else n) for n in allowed}
    return Agent(uid, user.name, user.display_name or user.name, user.role, personal, tuple(allowed), names)
