"""Start-up benchmark: how long `didchat run` takes to answer, on a new and on an existing database.

For each database (a SQLite file, and a fresh PostgreSQL database made from --postgres), each
user count (--users) and each way of giving passwords (`password_hash` in the config, or an
initial `password` that start-up must hash with argon2), it writes a config with that many
users (each with a personal number on one loopback connector), then times:

  first start: `didchat run` spawned -> GET /healthz answers 200, on an empty database
               (migrations, users and numbers written, initial passwords hashed);
  restart:     the same config again on the database the first start left.

Everything runs on 127.0.0.1; each start is bounded by --timeout; the PostgreSQL databases are
dropped at the end. Figures are wall-clock seconds, /healthz polled every 0.1 s.

    .venv/bin/python bench/startup.py                       # 10 and 1000 users, SQLite and PostgreSQL
    .venv/bin/python bench/startup.py --users 10,100 --postgres ''   # SQLite only
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PASSWORD,
    RESULTS_DIR,
    SECRET_KEY,
    ServerProcess,
    code_line,
    customer_numbers,
    machine,
    machine_line,
    params_of,
    text_table,
    write_results,
)

RESULTS = RESULTS_DIR / "startup.json"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
KINDS = ("password_hash", "password")  # how the config gives each user's password


def config_text(server: ServerProcess, db_url: str, users: int, kind: str, password_hash: str) -> str:
    """`users` agents with a personal number each; passwords given as `kind`."""
    numbers = customer_numbers(users)
    if len(numbers) < users:
        raise SystemExit(f"only {len(numbers)} numbers available")
    secret = password_hash if kind == "password_hash" else PASSWORD
    lines = [f"  - {{name: agent{i}, display_name: Agent {i}, {kind}: '{secret}'}}" for i in range(users)]
    nums = [f'  - {{number: "{n}", user: agent{i}}}' for i, n in enumerate(numbers)]
    listed = ", ".join(f'"{n}"' for n in numbers)
    return "\n".join([
        f"public_url: {server.url}", "host: 127.0.0.1", f"port: {server.port}", f'data_dir: "{server.dir}"',
        f'database_url: "{db_url}"', f'secret_key: "{SECRET_KEY}"', "log_level: warning",
        "users:", *lines, "access_numbers:", *nums,
        "connectors:", "  - type: loopback", "    name: bench", f"    secret: {'s' * 20}", f"    numbers: [{listed}]", "",
    ])


def timed_start(server: ServerProcess, text: str, timeout: float) -> float:
    began = time.perf_counter()
    server.start(text, timeout=timeout)
    took = time.perf_counter() - began
    server.stop()
    return round(took, 2)


def one_case(db_url: str, users: int, kind: str, password_hash: str, timeout: float, label: str) -> dict:
    """First start and restart of one configuration on one (empty) database."""
    server = ServerProcess(f"startup-{label}", keep=True)
    try:
        url = db_url or server.db_url
        text = config_text(server, url, users, kind, password_hash)
        return {"first_start_s": timed_start(server, text, timeout), "restart_s": timed_start(server, text, timeout)}
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


async def pg_database(admin_url: str, create: bool, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_url, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def run_case(database: str, args, users: int, kind: str, password_hash: str) -> dict:
    label = f"{database}-{users}-{kind}"
    if database == "sqlite":
        return one_case("", users, kind, password_hash, args.timeout, label)
    name = f"didchat_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(pg_database(args.postgres, True, name))
    try:
        url = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
        return one_case(url, users, kind, password_hash, args.timeout, label)
    finally:
        asyncio.run(pg_database(args.postgres, False, name))


def table(results: dict, databases: list[str], args) -> str:
    header = ("case",) + tuple({"sqlite": "SQLite", "postgres": "PostgreSQL"}[d] for d in databases)
    rows = [header]
    for users in args.users:
        for kind in args.kinds:
            for phase, key in (("first start", "first_start_s"), ("restart", "restart_s")):
                cells = [results[d].get(f"{users}/{kind}", {}).get(key) for d in databases]
                rows.append((f"{users} users, {kind}: {phase} (s)",) + tuple("-" if c is None else f"{c:.2f}" for c in cells))
    return text_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=lambda s: [int(x) for x in s.split(",")], default=[10, 1000],
                        help="comma-separated user counts")
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=list(KINDS),
                        help="how passwords are given: password_hash, password (comma-separated)")
    parser.add_argument("--postgres", default=PG_ADMIN, help="an admin URL to create databases with ('' to skip)")
    parser.add_argument("--timeout", type=float, default=600.0, help="the longest one start may take")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.users or min(args.users) < 1 or max(args.users) > 8000:
        parser.error("--users: counts between 1 and 8000")
    if not args.kinds or set(args.kinds) - set(KINDS):
        parser.error(f"--kinds: some of {', '.join(KINDS)}")

    from argon2 import PasswordHasher

    password_hash = PasswordHasher().hash(PASSWORD)
    databases = ["sqlite"] + (["postgres"] if args.postgres else [])
    info = machine()
    print(machine_line(info))
    print(code_line())
    results: dict[str, dict] = {d: {} for d in databases}
    for users in args.users:
        for kind in args.kinds:
            for database in databases:
                results[database][f"{users}/{kind}"] = run_case(database, args, users, kind, password_hash)
                print(f"  {database} {users} users {kind}: {results[database][f'{users}/{kind}']}", flush=True)
    print("\n" + machine_line(info) + "\n" + code_line() + "\n" + table(results, databases, args))
    write_results(args.output, {
        "benchmark": "startup", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "params": params_of(args), "results": results,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
