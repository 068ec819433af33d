"""`didchat config apply|export`, `didchat user add|passwd|disable|enable|list` and `didchat token
create|list|revoke`: the running configuration and API tokens from the command line.

Rules: each command works on the database of the node file given with `--config`, as the admin API
does (chat.domain.running: checked whole, one transaction, the next revision), then wakes the running
nodes through Redis when one is configured (they also look every 2 s). `config apply` prints the
difference first; nothing changes when there is none. No password is ever an argument: it is asked
for, or read from stdin with `--password-stdin`. Every mistake is one line (or the file's lines) and
exit 2, as in chat.cli.
"""
from __future__ import annotations

import asyncio
import copy
import difflib
import getpass
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from chat.config import Config

user_app = typer.Typer(help="Users of the running configuration.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for automation (chat.domain.tokens).", no_args_is_help=True)
NODE = typer.Option(..., "--config", "-c", help="this node's configuration file (its database is changed)")
AUTHOR = "cli"


def register(app: typer.Typer, configuration: typer.Typer) -> None:
    configuration.command("apply")(config_apply)
    configuration.command("export")(config_export)
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")


def _node(path: Path) -> Config:
    """The node file at `path`, or exit 2 with its file:line errors."""
    from chat.config import read_config
    from scenarios import SourceError

    try:
        return read_config(path)[0]
    except SourceError as err:
        raise _fail(str(err)) from None


def _yaml(data: Any) -> str:
    from ruamel.yaml import YAML

    out = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue()


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


async def _open(cfg: Config):
    from chat.store import Database, migrate

    db = Database(cfg.database())
    await migrate(db)
    return db


async def _running(db) -> tuple[int, dict]:
    from chat.domain.running import latest

    async with db.read() as conn:
        row = await latest(conn)
    return (row.revision, dict(row.document)) if row is not None else (0, {})


async def _tell_nodes(cfg: Config) -> None:
    """Wake the running nodes (chat.workers.cluster's wake channel), if there is a Redis; else they look soon."""
    url = cfg.redis()
    if url is None:
        return
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        await client.publish(f"{cfg.cluster.redis_prefix}:wake", "cli config")
    except (RedisError, OSError):
        typer.echo("warning: Redis did not answer: the nodes see the change within 2 s all the same", err=True)
    finally:
        await client.aclose()


def _change(cfg: Config, edit: Callable[[dict], Any], *, passwords: dict[str, str] | None = None, where: str | None = None,
            show: bool = False, dry_run: bool = False, from_file: bool = False) -> None:
    """Apply `edit` (the running document -> the wanted data) as the next revision, printing the difference
    if `show`; exit 2 with the problems if it is not valid. `from_file`: the data is a file's (its fingerprint is kept,
    chat.domain.running.start)."""
    from chat.domain.running import Conflict, apply, fingerprint, prepare
    from chat.domain.secrets import display
    from chat.workers.scenario_files import problems
    from scenarios import SourceError

    async def go() -> int:
        db = await _open(cfg)
        try:
            revision, current = await _running(db)
            wanted = edit(copy.deepcopy(current))
            try:
                config, stored = prepare(cfg, wanted, current, where or "running configuration", problems)
                shown = display(stored, current)
            except SourceError as err:
                raise _fail(str(err)) from None
            diff = "".join(difflib.unified_diff(_yaml(display(current)).splitlines(True), _yaml(shown).splitlines(True),
                                                f"running (revision {revision})", where or "wanted"))
            if show:
                typer.echo(diff or f"no changes: the running configuration (revision {revision}) is this already")
            if dry_run or (not diff and not passwords):
                return revision
            try:
                applied = await apply(db, cfg, wanted, source="cli", author=AUTHOR, expect=revision, passwords=passwords,
                                      mark=fingerprint(config) if from_file else None, where=where or "running configuration", check=problems)
            except SourceError as err:
                raise _fail(str(err)) from None
            except Conflict as err:
                raise _fail(f"{err} (changed while this ran): run the command again") from None
            await _tell_nodes(cfg)
            typer.echo(f"applied: revision {applied.revision}" + (f", {len(applied.moved)} conversation(s) moved"
                                                                 if applied.moved else ""))
            return applied.revision
        finally:
            await db.dispose()

    asyncio.run(go())


def config_apply(
    file: Path = typer.Argument(..., help="a configuration file: its users, access_numbers, callback_numbers, teams, "
                                          "conversations and opt_out_scope become the running configuration"),
    config: Path = typer.Option(None, "--config", "-c", help="this node's configuration file (default: FILE)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the difference only"),
) -> None:
    """Show the difference between FILE and the running configuration, and apply it (at once, on every node)."""
    from chat.config import MANAGED
    from scenarios import SourceError, load

    cfg = _node(config or file)
    try:
        doc = load(file)
    except SourceError as err:
        raise _fail(str(err)) from None
    data = doc.data
    if not hasattr(data, "keys"):
        raise _fail(f"{file}:1: the file must be a mapping of keys (users, access_numbers, …)")
    for key in [k for k in data if k not in MANAGED]:  # the node's own settings: read at its start, not applied
        del data[key]
    _change(cfg, lambda _: data, where=str(file), show=True, dry_run=dry_run, from_file=True)


def config_export(
    config: Path = NODE,
    output: Path = typer.Option(None, "--output", "-o", help="write it here (default: standard output)"),
) -> None:
    """Write the running configuration as YAML (what `config apply` takes; no passwords)."""
    cfg = _node(config)

    async def go() -> tuple[int, dict]:
        from chat.domain.audit import record

        db = await _open(cfg)
        try:
            found = await _running(db)
            async with db.write() as conn:
                await record(conn, actor=AUTHOR, action="config.exported", target=f"revision:{found[0]}")
            return found
        finally:
            await db.dispose()

    from chat.domain.secrets import STORED, display

    revision, doc = asyncio.run(go())
    text = (f"# didchat running configuration, revision {revision} (didchat config export)\n"
            f"# connectors' secrets: {STORED} keeps the one stored; a value or ${{NAME}} (an environment variable) sets it\n"
            + _yaml(display(doc, references=False)))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote revision {revision} to {output}", err=True)


def _password(stdin: bool) -> str:
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise _fail("the passwords differ: nothing changed")
    if len(password) < 8:
        raise _fail("password: at least 8 characters")
    return password


def _users(doc: dict) -> list[dict]:
    return doc.setdefault("users", [])


def _find(doc: dict, name: str) -> dict:
    for user in _users(doc):
        if user.get("name") == name:
            return user
    raise _fail(f"no user named {name!r} in the running configuration (didchat user list)")


@user_app.command("list")
def user_list(config: Path = NODE) -> None:
    """The users of the running configuration: name, role, display name, teams."""
    from chat.config import Managed

    cfg = _node(config)

    async def go() -> dict:
        db = await _open(cfg)
        try:
            return (await _running(db))[1]
        finally:
            await db.dispose()

    managed = Managed.model_validate(asyncio.run(go()))
    teams = managed.team_members()
    for user in managed.users:
        member = ",".join(t for t, names in teams.items() if user.name in names) or "-"
        state = " (disabled)" if user.disabled else ""
        typer.echo(f"{user.name}\t{user.role}\t{user.display_name or user.name}\t{member}{state}")


@user_app.command("add")
def user_add(
    name: str = typer.Argument(...),
    config: Path = NODE,
    display_name: str = typer.Option(None, "--display-name"),
    role: str = typer.Option("agent", "--role", help="agent, supervisor or admin"),
    team: list[str] = typer.Option([], "--team", help="a team to join (again for more)"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Add a user to the running configuration (asks for their password)."""
    cfg = _node(config)
    password = _password(password_stdin)

    def edit(doc: dict) -> dict:
        if any(u.get("name") == name for u in _users(doc)):
            raise _fail(f"user {name!r} exists already")
        _users(doc).append({"name": name, "role": role, **({"display_name": display_name} if display_name else {})})
        teams = doc.setdefault("teams", {})
        for t in team:
            entry = teams.get(t)
            members = list(entry if isinstance(entry, list) else (entry or {}).get("members", []))
            teams[t] = {**(entry if isinstance(entry, dict) else {}), "members": [*members, name]}
        return doc

    _change(cfg, edit, passwords={name: password})


@user_app.command("passwd")
def user_passwd(name: str = typer.Argument(...), config: Path = NODE,
                password_stdin: bool = typer.Option(False, "--password-stdin")) -> None:
    """Set a user's password (asks for it)."""
    cfg = _node(config)
    password = _password(password_stdin)

    def edit(doc: dict) -> dict:
        _find(doc, name)
        return doc

    _change(cfg, edit, passwords={name: password})


def _set_disabled(name: str, config: Path, value: bool) -> None:
    cfg = _node(config)

    def edit(doc: dict) -> dict:
        user = _find(doc, name)
        if value:
            user["disabled"] = True
        else:
            user.pop("disabled", None)
        return doc

    _change(cfg, edit)


@user_app.command("disable")
def user_disable(name: str = typer.Argument(...), config: Path = NODE) -> None:
    """Disable a user: they are signed out and may not log in; their open conversations follow their numbers."""
    _set_disabled(name, config, True)


@user_app.command("enable")
def user_enable(name: str = typer.Argument(...), config: Path = NODE) -> None:
    """Let a disabled user log in again."""
    _set_disabled(name, config, False)


def _in_store(cfg: Config, work: Callable[[Any], Any], write: bool = True) -> Any:
    """Run `work(conn)` in one transaction on the node's database."""
    async def go() -> Any:
        db = await _open(cfg)
        try:
            async with (db.write() if write else db.read()) as conn:
                return await work(conn)
        finally:
            await db.dispose()
    return asyncio.run(go())


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help="what it is for, e.g. hr-sync"),
    config: Path = NODE,
    scope: list[str] = typer.Option(..., "--scope", help="read, write, or RESOURCE:read|write (again for more)"),
    days: float = typer.Option(90, "--days", min=0, help="it expires after this many days (0: never)"),
) -> None:
    """Create an API token; it is printed once, here, and never again."""
    from chat.domain import tokens

    bad = [s for s in scope if s not in tokens.SCOPES]
    if bad:
        raise _fail(f"--scope: {bad[0]!r} is not a scope; give read, write, or RESOURCE:read|write with RESOURCE one of "
                    + ", ".join(tokens.RESOURCES))
    cfg = _node(config)
    secret, shown = _in_store(cfg, lambda conn: tokens.create(conn, name=name, scopes=tuple(dict.fromkeys(scope)),
                                                                created_by=AUTHOR, days=days or None))
    typer.echo(secret)
    typer.echo(f"token {shown['id']} ({name}): {', '.join(shown['scopes'])}; expires {shown['expires_at'] or 'never'}; "
               "keep it now: it is not shown again", err=True)


@token_app.command("list")
def token_list(config: Path = NODE) -> None:
    """API tokens: id, name, scopes, state, expiry, last use (never their secrets)."""
    from chat.domain import tokens

    for t in _in_store(_node(config), tokens.listing, write=False):
        typer.echo(f"{t['id']}\t{t['name']}\t{','.join(t['scopes'])}\t{t['state']}\t{t['expires_at'] or 'never'}\t"
                   f"{t['last_used_at'] or '-'}")


@token_app.command("revoke")
def token_revoke(token: str = typer.Argument(..., help="its id or name"), config: Path = NODE) -> None:
    """Revoke an API token: refused at once on every node."""
    from chat.domain import tokens

    if not _in_store(_node(config), lambda conn: tokens.revoke(conn, token_id=token, by=AUTHOR)):
        raise _fail(f"no live token {token!r} (didchat token list)")
    typer.echo(f"revoked {token}")
