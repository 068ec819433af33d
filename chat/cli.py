"""The `didchat` command: run, demo, migrate, config check, simulate."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import structlog
import typer

from chat.config import Config, GenericConnector, LoopbackConnector, TwilioConnector, load_config
from scenarios import SourceError

app = typer.Typer(help="didchat: SMS to an agent's personal number, as a live chat in the browser.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
simulate_app = typer.Typer(help="Make things happen without a provider.", no_args_is_help=True)
scenario_app = typer.Typer(help="Scenario files: validate them, and test them without a phone.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(simulate_app, name="simulate")
app.add_typer(scenario_app, name="scenario")
DEMO_TEMPLATE = Path(__file__).resolve().parent / "demo" / "demo.yaml"
DEMO_CONFIG = Path("data") / "demo.yaml"
DEMO_ENV = Path("data") / "demo.env"


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except SourceError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None


def _logging() -> None:
    structlog.configure(processors=[
        structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
    ])


@app.command()
def run(config: Path = typer.Option(..., "--config", "-c", help="the configuration file")) -> None:
    """Run didchat with a configuration file."""
    _serve(_load(config))


def _serve(cfg: Config) -> None:
    from aiohttp import web

    from chat.app import create_app

    _logging()
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(create_app(cfg), host=cfg.host, port=cfg.port, access_log=None, print=None)


@app.command()
def migrate(config: Path = typer.Option(..., "--config", "-c")) -> None:
    """Bring the configured database to the newest schema."""
    from chat.store import Database
    from chat.store import migrate as upgrade

    cfg = _load(config)

    async def go() -> None:
        db = Database(cfg.database())
        await upgrade(db)
        await db.dispose()

    asyncio.run(go())
    typer.echo(f"migrated {cfg.database()}")


@config_app.command("check")
def config_check(files: list[Path]) -> None:
    """Validate configuration files; print file:line errors and exit 2 on any."""
    bad = 0
    for path in files:
        try:
            load_config(path)
            typer.echo(f"{path}: ok")
        except SourceError as err:
            typer.echo(str(err), err=True)
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
def demo() -> None:
    """Run the demo: SQLite in ./data, agents alice and bob, a loopback provider."""
    env = _demo_env()
    os.environ.update(env)
    if not DEMO_CONFIG.exists():
        DEMO_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO_TEMPLATE, DEMO_CONFIG)
    cfg = _load(DEMO_CONFIG)
    url = cfg.public_url
    typer.echo(f"""
  didchat demo is starting on {url}

  1. Open {url} and log in as  alice / {env['DIDCHAT_DEMO_PASSWORD']}   (bob has the same password)
  2. In another terminal, text Alice's personal number:
       .venv/bin/didchat simulate sms --from +12125550199 --to +12125550101 --text "Hi Alice, it's Carol"
  3. Reply in the browser; the loopback provider logs the SMS here and reports it delivered.

  Config: {DEMO_CONFIG}   Database: {cfg.database()}
""")
    _serve(cfg)


def _demo_env() -> dict[str, str]:
    if DEMO_ENV.exists():
        return dict(line.split("=", 1) for line in DEMO_ENV.read_text().split())
    env = {"DIDCHAT_DEMO_PASSWORD": secrets.token_urlsafe(9), "DIDCHAT_DEMO_SECRET": secrets.token_urlsafe(24)}
    DEMO_ENV.parent.mkdir(parents=True, exist_ok=True)
    DEMO_ENV.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    DEMO_ENV.chmod(0o600)
    return env


@simulate_app.command("sms")
def simulate_sms(
    sender: str = typer.Option(..., "--from", help="the customer's number"),
    to: str = typer.Option(..., "--to", help="our access number"),
    text: str = typer.Option(..., "--text"),
    config: Path = typer.Option(None, "--config", "-c", help="default: the demo's config"),
) -> None:
    """Post a correctly signed inbound-SMS webhook to the running server."""
    if config is None:
        os.environ.update(_demo_env())
        config = DEMO_CONFIG
    cfg = _load(config)
    conn = cfg.connector_of(to) or typer.echo(f"no connector owns {to}", err=True) or None
    if conn is None:
        raise typer.Exit(2)
    url, body, headers = signed_sms(cfg, conn, sender, to, text)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            typer.echo(f"{answer.status}: delivered to didchat at {url}")
    except urllib.error.HTTPError as err:
        typer.echo(f"{err.code}: {err.read().decode(errors='replace')}", err=True)
        raise typer.Exit(1) from None
    except urllib.error.URLError as err:
        typer.echo(f"cannot reach {url}: {err.reason} (is didchat running?)", err=True)
        raise typer.Exit(1) from None


def signed_sms(cfg: Config, conn, sender: str, to: str, text: str, message_id: str | None = None):
    """URL, body and headers of a signed inbound webhook for this connector."""
    from gateway import didchat_signature, twilio_signature
    from urllib.parse import urlencode

    base = cfg.public_url.rstrip("/")
    if isinstance(conn, TwilioConnector):
        url = f"{base}/webhooks/twilio/{conn.name}"
        params = {"MessageSid": message_id or "SM" + uuid.uuid4().hex, "AccountSid": conn.account_sid,
                  "From": sender, "To": to, "Body": text, "NumMedia": "0"}
        headers = {"X-Twilio-Signature": twilio_signature(conn.auth_token.get_secret_value(), url, params),
                   "Content-Type": "application/x-www-form-urlencoded"}
        return url, urlencode(params).encode(), headers
    assert isinstance(conn, (GenericConnector, LoopbackConnector))
    url = f"{base}/webhooks/generic/{conn.name}"
    body = json.dumps({"id": message_id or uuid.uuid4().hex, "from": sender, "to": to, "text": text}).encode()
    return url, body, {"X-Didchat-Signature": didchat_signature(conn.secret.get_secret_value(), body), "Content-Type": "application/json"}


def main() -> None:
    app()
