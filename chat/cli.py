"""The `didchat` command: run, demo, migrate, config check|apply|export, user …, scenario validate|test, simulate sms.

Rules: no user mistake ends in a traceback: a bad or missing file, a bad option, a database that
cannot be reached, a port in use each give one line naming the file, line or option, and exit 2.
Modules are imported by the command that needs them: `--help` and `simulate sms` load neither
the web stack nor the store. `run` checks everything start-up will meet before it serves.
"""
from __future__ import annotations

import asyncio
import errno
import os
import secrets
import shutil
import socket
import urllib.error
import urllib.request
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from chat.config import Config

app = typer.Typer(help="didchat: SMS to an agent's personal number, as a live chat in the browser.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)  # locals hold secrets
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
simulate_app = typer.Typer(help="Make things happen without a provider.", no_args_is_help=True)
scenario_app = typer.Typer(help="Scenario files: validate them, and test them without a phone.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(simulate_app, name="simulate")
app.add_typer(scenario_app, name="scenario")
DEMO_TEMPLATE = Path(__file__).resolve().parent / "demo" / "demo.yaml"
DEMO_CONFIG = Path("data") / "demo.yaml"
DEMO_ENV = Path("data") / "demo.env"
PROBE_SECONDS = 10  # how long `run` waits for the database before it calls it unreachable
LISTEN_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


class LogFormat(StrEnum):
    console = "console"
    json = "json"


def fail(message: str) -> typer.Exit:
    """Print one `error:` line and give the exit (code 2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _version(value: bool) -> None:
    """`--version`: the installed package's version."""
    if value:
        try:
            typer.echo(f"didchat {version('didchat')}")
        except PackageNotFoundError:
            typer.echo("didchat (not installed: run `pip install -e .`)")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    """didchat: SMS to an agent's personal number, as a live chat in the browser."""


def _load(path: Path, full: bool = False) -> Config:
    """The configuration at `path`, or exit 2 with file:line errors; `full` also loads its scenarios
    as start-up does, and warns (that needs the store's modules: `simulate sms` goes without)."""
    from chat.config import read_config
    from scenarios import SourceError

    try:
        cfg, doc = read_config(path)
        if not full:
            return cfg
        from chat.domain.directory import config_warnings
        from chat.workers import scenario_files

        for warning in config_warnings(cfg, doc):
            typer.echo(f"warning: {warning}", err=True)
        problems = scenario_files.problems(cfg, doc)
        if problems:
            raise SourceError(problems)
    except SourceError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None
    return cfg


def _listen_at(cfg: Config, host: str | None, port: int | None, public: bool = False) -> Config:
    """`cfg` listening where --host/--port say; with `public` (the demo), `public_url` follows, so signed webhooks verify."""
    if host is None and port is None:
        return cfg
    host, port = host or cfg.host, cfg.port if port is None else port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    public_url = f"http://{shown}:{port}" if public else cfg.public_url
    return cfg.model_copy(update={"host": host, "port": port, "public_url": public_url})


@app.command()
def run(
    config: Path = typer.Option(..., "--config", "-c", help="the configuration file"),
    host: str = typer.Option(None, "--host", help="listen on this address (default: the config's host)"),
    port: int = typer.Option(None, "--port", min=0, max=65535, help="listen on this port (default: the config's port)"),
    log_format: LogFormat = typer.Option(None, "--log-format", help="console or json (default: the config's log_format)"),
) -> None:
    """Run didchat with a configuration file."""
    cfg = _listen_at(_load(config, full=True), host, port)
    _serve(cfg.model_copy(update={"log_format": log_format.value}) if log_format else cfg)


def _serve(cfg: Config) -> None:
    """Check what start-up needs (folder, database, port), set up logging, and serve until stopped."""
    import asyncio

    from chat import logs

    logs.setup(cfg.log_format, cfg.log_level)  # first: a logger used before it would keep structlog's defaults
    _ready(cfg)
    from aiohttp import web

    from chat.app import create_app

    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    try:
        web.run_app(create_app(cfg), host=cfg.host, port=cfg.port, access_log=None, print=None,
                    shutdown_timeout=cfg.shutdown_seconds)
    except OSError as err:
        if err.errno not in LISTEN_ERRORS:
            raise
        raise fail(_listen_error(cfg, err)) from None  # the port was taken between the check and the bind


def _ready(cfg: Config) -> None:
    """Exit 2 with one line if the data folder, the database or the port cannot be used."""
    _check_data_dir(cfg)
    _check_database(cfg)
    _check_port(cfg)


def _check_data_dir(cfg: Config) -> None:
    """The data folder (SQLite file, generated secret key) exists and can be written."""
    if cfg.secret_key and (cfg.database_url or os.environ.get("DIDCHAT_DATABASE_URL")):  # nothing is kept there then
        return
    path = Path(cfg.data_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise fail(f"data_dir: cannot create {path}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise fail(f"data_dir: {path} is not writable by this user")


def _check_database(cfg: Config) -> None:
    """The database answers; the option named is the one that gave its URL."""
    import asyncio

    url, where = cfg.database(), "DIDCHAT_DATABASE_URL" if os.environ.get("DIDCHAT_DATABASE_URL") else "database_url"
    problem = asyncio.run(_probe(url))
    if problem:
        raise fail(f"{where}: {problem}")


async def _probe(url: str) -> str | None:
    """Why the database at `url` cannot be used, or None: one connection, then closed."""
    import asyncio

    import sqlalchemy.exc

    from chat.store import Database

    try:
        db = Database(url)
    except ImportError as err:
        return f"its driver is not installed ({_one_line(err)}); use postgresql+asyncpg:// or sqlite+aiosqlite://"
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as err:
        return f"not a database URL ({_one_line(err)}); e.g. postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path"
    except OSError as err:  # the folder of a SQLite file
        return f"cannot create the folder of {err.filename or url}: {err.strerror or err}"
    shown = db.url.render_as_string(hide_password=True)
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            async with db.engine.connect():
                pass
    except (OSError, TimeoutError, sqlalchemy.exc.SQLAlchemyError) as err:
        reason = _one_line(getattr(err, "orig", None) or err) or "no answer"
        return f"cannot connect to {shown}: {_hide(reason, db.url.password)}"
    except Exception as err:  # noqa: BLE001 - a driver's own error type (asyncpg raises several)
        return f"cannot connect to {shown}: {_hide(_one_line(err), db.url.password)}"
    finally:
        await db.dispose()
    return None


def _one_line(err: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text, kind = str(err).strip().splitlines(), type(err).__name__
    if kind == "Error":  # SQLAlchemy's adapted DBAPI error: its type says nothing
        return text[0] if text else "database error"
    return f"{kind}: {text[0]}" if text else kind


def _hide(text: str, password: str | None) -> str:
    """`text` with the database password masked (a driver may quote it)."""
    return text.replace(password, "***") if password else text


def _check_port(cfg: Config) -> None:
    """Nothing else listens where we are to listen."""
    if cfg.port == 0:
        return
    try:
        with socket.create_server((cfg.host, cfg.port)):  # SO_REUSEADDR, as aiohttp binds
            pass
    except OSError as err:
        raise fail(_listen_error(cfg, err)) from None


def _listen_error(cfg: Config, err: OSError) -> str:
    """The one line for an address we cannot listen on."""
    if err.errno == errno.EADDRINUSE or "address already in use" in str(err).lower():
        return f"{cfg.host}:{cfg.port} is already in use (choose another with --port)"
    return f"cannot listen on {cfg.host}:{cfg.port}: {err.strerror or err} (check host and port, or --host/--port)"


@app.command()
def migrate(config: Path = typer.Option(..., "--config", "-c")) -> None:
    """Bring the configured database to the newest schema."""
    import asyncio

    from chat import logs
    from chat.store import Database
    from chat.store import migrate as upgrade

    cfg = _load(config)
    logs.setup(cfg.log_format, cfg.log_level)
    _check_database(cfg)

    async def go() -> None:
        db = Database(cfg.database())
        await upgrade(db)
        await db.dispose()

    asyncio.run(go())
    typer.echo(f"migrated {_shown_url(cfg.database())}")


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@config_app.command("check")
def config_check(files: list[Path]) -> None:
    """Validate configuration files and the scenario files they use; print file:line errors and exit 2 on any."""
    bad = 0
    for path in files:
        try:
            _load(path, full=True)
            typer.echo(f"{path}: ok")
        except typer.Exit:
            bad += 1
    raise typer.Exit(2 if bad else 0)


@scenario_app.command("validate")
def scenario_validate(files: list[Path]) -> None:
    """Check scenario (and scenario test) files; print file:line errors and exit 2 on any."""
    from scenarios import cli

    raise typer.Exit(2 if cli.validate([str(f) for f in files]) else 0)


@scenario_app.command("test")
def scenario_test(files: list[Path]) -> None:
    """Run scenario tests (FILE.test.yaml, or the one beside FILE.yaml): PASS/FAIL per case; exit 1 on a failure."""
    from scenarios import cli

    raise typer.Exit(cli.test([str(f) for f in files]))


@app.command()
def demo(
    host: str = typer.Option(None, "--host", help="listen on this address (default 127.0.0.1)"),
    port: int = typer.Option(None, "--port", min=0, max=65535, help="listen on this port (default 8080)"),
) -> None:
    """Run the demo: SQLite in ./data, agents alice and bob, a loopback provider."""
    env = _demo_env()
    os.environ.update(env)
    if not DEMO_CONFIG.exists():
        DEMO_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO_TEMPLATE, DEMO_CONFIG)
    base = _load(DEMO_CONFIG, full=True)
    cfg = _listen_at(base, host, port, public=True)
    url = cfg.public_url
    also = f' --url {url}' if url != base.public_url else ""
    typer.echo(f"""
  didchat demo is starting on {url}

  1. Open {url} and log in as  alice / {env['DIDCHAT_DEMO_PASSWORD']}   (bob has the same password)
  2. In another terminal, text Alice's personal number:
       .venv/bin/didchat simulate sms --from +12125550199 --to +12125550101 --text "Hi Alice, it's Carol"{also}
  3. Reply in the browser; the loopback provider logs the SMS here and reports it delivered.

  Config: {DEMO_CONFIG}   Database: {cfg.database()}
""")
    _serve(cfg)


def _demo_env() -> dict[str, str]:
    """The demo's generated password and secret, kept in data/demo.env."""
    try:
        if DEMO_ENV.exists():
            return dict(line.split("=", 1) for line in DEMO_ENV.read_text().split())
        env = {"DIDCHAT_DEMO_PASSWORD": secrets.token_urlsafe(9), "DIDCHAT_DEMO_SECRET": secrets.token_urlsafe(24)}
        DEMO_ENV.parent.mkdir(parents=True, exist_ok=True)
        DEMO_ENV.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        DEMO_ENV.chmod(0o600)
    except (OSError, ValueError) as err:
        raise fail(f"{DEMO_ENV}: cannot read or write it ({err}); delete it and run the demo again") from None
    return env


@simulate_app.command("sms")
def simulate_sms(
    sender: str = typer.Option(..., "--from", help="the customer's number"),
    to: str = typer.Option(..., "--to", help="our access number"),
    text: str = typer.Option(..., "--text"),
    config: Path = typer.Option(None, "--config", "-c", help="default: the demo's config"),
    url: str = typer.Option(None, "--url", help="the server's address (default: the config's public_url)"),
) -> None:
    """Post a correctly signed inbound-SMS webhook to the running server."""
    if config is None:
        os.environ.update(_demo_env())
        config = DEMO_CONFIG
    cfg = _load(config)
    cfg = cfg.model_copy(update={"public_url": url}) if url else cfg
    conn = cfg.connector_of(to) or _running_connectors(cfg).get(to)  # the database only when the file lacks it (fast)
    from gateway.providers import PROVIDERS

    if conn is None or getattr(PROVIDERS.get(conn.type), "simulate", None) is None:
        raise fail(f"--to: no webhook connector of the running configuration (or {config}) owns {to}")
    target, body, headers = signed_sms(cfg, conn, sender, to, text)
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            typer.echo(f"{answer.status}: delivered to didchat at {target}")
    except urllib.error.HTTPError as err:
        typer.echo(f"{err.code}: {err.read().decode(errors='replace')}", err=True)
        raise typer.Exit(1) from None
    except (urllib.error.URLError, OSError) as err:
        typer.echo(f"cannot reach {target}: {getattr(err, 'reason', err)} (is didchat running?)", err=True)
        raise typer.Exit(1) from None


def signed_sms(cfg: Config, conn, sender: str, to: str, text: str, message_id: str | None = None):
    """URL, body and headers of a signed inbound webhook for this connector (its provider builds it)."""
    from gateway.providers import PROVIDERS

    provider = PROVIDERS.get(conn.type)
    if provider is None or provider.simulate is None:
        raise ValueError(f"connector {conn.name!r} ({conn.type}) cannot be sent a simulated SMS")
    base = cfg.public_url.rstrip("/")
    made = provider.simulate(conn, base, sender, to, text, message_id or "")
    return base + made.path, made.body, made.headers


def _admin_commands() -> None:
    from chat.cli_admin import register

    register(app, config_app)


_admin_commands()


def main() -> None:
    app()


def _running_connectors(cfg: Config) -> dict:
    """number -> connector of the running configuration in the node's database (one added through the admin API
    included); nothing if there is none yet or it cannot be read (the file's then)."""
    from chat.domain.running import load
    from chat.store import Database

    url = cfg.database()
    if url.startswith("sqlite") and not Path(url.split(":///", 1)[-1]).exists():
        return {}  # no database yet (and none made by looking)

    async def go() -> dict:
        db = Database(url)
        try:
            return (await load(db, cfg)).directory.config.connectors_by_number()  # type: ignore[union-attr]
        finally:
            await db.dispose()
    try:
        return asyncio.run(go())
    except Exception:  # noqa: BLE001 - no database yet, an older schema, a secret this shell cannot read
        return {}
