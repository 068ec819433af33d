"""The running configuration: what administrators change while didchat runs, one revision at a time.

Rules:
- One truth. `config_revisions` holds every revision of the managed part of the configuration
  (chat.config.Managed: users, access numbers, callback numbers, teams, conversation settings,
  connectors) as a JSON document without passwords (those are hashed in `users`) and with each
  connector's secret sealed or a reference (chat.domain.secrets). The newest revision runs, on every
  node; a node's file keeps only its own settings (chat.config.Config) besides.
- A change (the admin API, `didchat config apply`, a start with a changed file) is one transaction:
  the whole configuration is checked first (the file's checks, and a new user needs a password), then
  users, numbers and teams are written (chat.domain.directory.write_directory, which also moves the
  open conversations that follow a reassigned number) and the next revision is added. Two changes at
  once: the second is refused with Conflict (it read an older revision), never both half applied.
- The file wins when it changes. A start whose file's managed part (its fingerprint) differs from the
  one last applied from a file applies the file, as a new revision; otherwise the stored revision runs,
  with whatever the API changed since. `didchat config export` writes the running one.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from chat.config import MANAGED, Config, Managed, cross_check
from chat.domain.audit import record, summary
from chat.domain.directory import ADMINS, Directory, Move, build_directory, hash_passwords, unrouted_numbers, user_ids, write_directory
from chat.domain.secrets import digests, display, reveal, seal, secrets_of, vault_for, with_secrets
from chat.store import Database, utcnow
from chat.store.tables import config_revisions, users
from scenarios import Document, Problem, SourceError

log = structlog.get_logger()
RUNNING = "running configuration"  # the "file" that problems of a stored or posted document are placed in
NO_PASSWORDS = {"users": {"__all__": {"password", "password_hash"}}}
Check = Callable[[Config, Document], Iterable[Problem]]


class Conflict(Exception):
    """The running configuration changed since the change was prepared: prepare it again."""

    def __init__(self, revision: int):
        self.revision = revision
        super().__init__(f"the running configuration is now at revision {revision}")


@dataclass(frozen=True)
class Applied:
    revision: int
    directory: Directory
    moved: tuple[Move, ...] = ()  # open conversations that followed a reassigned number
    changed: bool = True  # False: the document was the running one already (no revision added)
    document: dict | None = None  # as stored: secrets sealed (chat.domain.secrets.display shows it)


def document(config: Managed) -> dict[str, Any]:
    """The managed part of `config` as plain JSON data, without passwords or defaults (what is stored, once `prepare`
    put each connector's stored secret in place of pydantic's mask)."""
    return config.model_dump(mode="json", include=set(MANAGED), exclude=NO_PASSWORDS, exclude_defaults=True)


def fingerprint(config: Config) -> str:
    """SHA-256 of a file's managed part as it would be applied (password hashes included, initial passwords not:
    those count only for a new user; connectors' secrets as keyed digests)."""
    hashes = {u.name: u.password_hash.get_secret_value() for u in config.users if u.password_hash}
    keyed = digests(with_secrets(config, document(config)), vault_for(config))
    return hashlib.sha256(json.dumps([document(config), hashes, keyed], sort_keys=True).encode()).hexdigest()


def prepare(node: Config, wanted: Config | Any, previous: Any, where: str = RUNNING,
            check: Check | None = None) -> tuple[Config, dict]:
    """What `wanted` (a file's Config, or a managed document) runs as, and the document stored for it: normalized,
    its secrets sealed against the `previous` document (chat.domain.secrets.seal)."""
    vault = vault_for(node)
    raw = with_secrets(wanted, document(wanted)) if isinstance(wanted, Config) else wanted
    stored = seal(raw, previous, vault)
    config = wanted if isinstance(wanted, Config) else running_config(node, stored, where, check)
    data = document(config)
    for (_, i, name), _, _, value in secrets_of(stored):
        data["connectors"][i][name] = value
    return config, data


def running_config(node: Config, data: Any, where: str = RUNNING, check: Check | None = None) -> Config:
    """`node`'s settings with `data` (a managed document, its secrets as stored or plain) as its running part,
    checked as a file is (and by `check`: the scenario files its numbers name); SourceError naming each bad field
    (placed in `where`), or each secret this node cannot have."""
    doc = Document(where, data)
    plain, missing = reveal(data, vault_for(node))
    if missing:
        raise SourceError([doc.problem(loc, message) for loc, message in missing])
    managed = Document(where, plain).validate(Managed)
    config = node.model_copy(update={name: getattr(managed, name) for name in MANAGED})
    problems = list(cross_check(config, doc))
    if not problems and check is not None:
        problems = list(check(config, doc))
    if problems:
        raise SourceError(problems)
    return config


async def latest(conn):
    """The newest revision's row (None before the first start)."""
    return (await conn.execute(sa.select(config_revisions).order_by(config_revisions.c.revision.desc()).limit(1))).first()


async def current_revision(conn) -> int:
    return await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(config_revisions.c.revision), 0)))


async def start(db: Database, node: Config, check: Check | None = None) -> Applied:
    """At start: apply the file's managed part if it changed since it was last applied, else load the stored one."""
    mark = fingerprint(node)
    for attempt in (1, 2):
        async with db.read() as conn:
            row = await latest(conn)
        if row is not None and row.fingerprint == mark:
            return await load(db, node, check)
        try:
            return await apply(db, node, node, source="file", author="file", expect=row.revision if row else 0,
                               mark=mark, where="configuration file")
        except (Conflict, sa.exc.IntegrityError):  # another node started at the same time: its revision stands
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def load(db: Database, node: Config, check: Check | None = None) -> Applied:
    """The stored running configuration as a directory (what a node does when another node changed it)."""
    async with db.read() as conn:
        row = await latest(conn)
        ids = await user_ids(conn)
    if row is None:
        raise LookupError("no running configuration is stored yet")
    config = running_config(node, row.document, check=check)
    return Applied(row.revision, build_directory(config, ids), changed=False, document=row.document)


async def apply(db: Database, node: Config, wanted: Config | Any, *, source: str, author: str,
                expect: int | None = None, passwords: dict[str, str] | None = None, mark: str | None = None,
                where: str = RUNNING, check: Check | None = None, address: str = "") -> Applied:
    """Make `wanted` (a file's Config, or a managed document) the running configuration: checked whole, written in one
    transaction with the next revision. `expect`: the revision it was prepared from (Conflict otherwise);
    `passwords`: name -> new password (a new user's, or a reset); `mark`: the file's fingerprint (a file's).
    A file's Config was checked by its loader; a document is checked here, with `check` too."""
    async with db.read() as conn:
        known = set((await conn.scalars(sa.select(users.c.name))).all())
        previous = await latest(conn)
    config, data = prepare(node, wanted, previous.document if previous else {}, where, check)
    passwords = dict(passwords or {})
    _check_passwords(config, known, passwords, where)
    initial = {u.name: u.password.get_secret_value() for u in config.users
               if u.name not in known and u.password and not u.password_hash and u.name not in passwords}
    hashes = await hash_passwords(initial | passwords)
    async with db.write() as conn:
        row = await latest(conn)
        revision = row.revision if row else 0
        if expect is not None and revision != expect:
            raise Conflict(revision)
        if row is not None and row.document == data and mark in (None, row.fingerprint) and not passwords:
            ids = await user_ids(conn)
            return Applied(revision, build_directory(config, ids), changed=False, document=data)
        directory, moved = await write_directory(conn, config, hashes)
        if passwords:
            await _set_passwords(conn, {name: hashes[name] for name in passwords if name in known})
        before = row.document if row else {}
        details = summary(display(before), display(data, before)) | ({"passwords_set": sorted(passwords)} if passwords else {})
        await record(conn, actor=author, action="config.changed", target=f"revision:{revision + 1}", address=address,
                     details=details | {"source": source})
        await conn.execute(config_revisions.insert().values(
            revision=revision + 1, document=data, source=source, author=author[:64],
            fingerprint=mark or (row.fingerprint if row else ""), created_at=utcnow()))
    if moved:
        log.info("conversations.followed_numbers", moved=len(moved))
    for number in unrouted_numbers(config, directory):
        log.warning("routing.no_route", number=number, queue=ADMINS)
    log.info("config.applied", revision=revision + 1, source=source, author=author)
    return Applied(revision + 1, directory, tuple(moved), document=data)


def _check_passwords(config: Config, known: set[str], passwords: dict[str, str], where: str) -> None:
    doc = Document(where, {})
    problems = [doc.problem(("users", i), f"user {u.name!r} is new: give it a password (or a password_hash)")
                for i, u in enumerate(config.users)
                if u.name not in known and not u.password and not u.password_hash and u.name not in passwords]
    problems += [Problem(where, 0, "password", f"no user named {name!r}") for name in passwords
                 if name not in {u.name for u in config.users}]
    if problems:
        raise SourceError(problems)


async def _set_passwords(conn, hashes: dict[str, str]) -> None:
    for name, value in hashes.items():
        await conn.execute(users.update().where(users.c.name == name).values(password_hash=value))
