"""Several `didchat run` processes on one database, and the loop every benchmark runs on them.

A target is a database and a node count: SQLite (one node: SQLite is for one process) or a fresh
PostgreSQL database with N nodes sharing the real Redis. One invocation measures every target (by
default SQLite, PostgreSQL with one node, PostgreSQL with two), all up at once and measured round
by round (`measure`), and prints them side by side; `--repeat K` runs the same measurement K times
on one database (the decay check, and K rounds). `--search-index off` (or `both`, side by side) measures a
target without the message text's search index (migration 0023's), dropped after the migration: what
the index costs an inbound message.

Rules:
- Servers always run in other processes than the load generator, for one node as well, so that
  CPU is read per process from /proc/PID/stat.
- One config file for every node; only --port differs. public_url is node 0's address, so a
  webhook signed for it verifies on every node. The schema is migrated once (`didchat migrate`)
  before any node starts, and the nodes start one after the other.
- PostgreSQL's CPU is the sum over its processes during a run: the backends of the benchmark's
  database (pg_stat_activity, sampled every SAMPLE_SECONDS so that short-lived ones count) and
  the server's own processes (postmaster, WAL writer, checkpointer...: shared with anything else
  using that server at the time).
- Each target gets a fresh database (dropped afterwards) and its own `cluster.redis_prefix` (its
  keys deleted afterwards). Every wait is bounded; every process started here is stopped here.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import asyncpg  # noqa: E402 - after common, which puts the repository on sys.path
from common import (
    DIDCHAT,
    ServerProcess,
    didchat_env,
    proc_cpu_seconds,
    remove_dir,
    self_cpu_seconds,
    text_table,
)

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
SAMPLE_SECONDS = 0.25
START_SECONDS = 60.0  # a node's start-up on a loaded 2-core machine
DECAY_LIMIT = 0.10  # the issue: consecutive runs within 10 % of each other


# ---------------------------------------------------------------- targets and databases

@dataclass(frozen=True)
class Target:
    """A database ("sqlite", or a PostgreSQL URL whose database is an admin one) and a node count."""

    database: str
    nodes: int = 1
    search_index: bool = True  # False: the message text's search index dropped after the migration

    @property
    def kind(self) -> str:
        return "sqlite" if self.database == "sqlite" else "postgresql"

    @property
    def label(self) -> str:
        name = "SQLite" if self.kind == "sqlite" else f"PostgreSQL {self.nodes} node{'s' if self.nodes > 1 else ''}"
        return name if self.search_index else f"{name}, no search index"


def targets(database_urls: list[str], node_counts: list[int], search_index: str = "on") -> list[Target]:
    """Every database with every node count (SQLite with one node only); with search_index "both", each twice,
    without the index right after with it (so each round meets the two at nearly the same moment)."""
    variants = {"on": (True,), "off": (False,), "both": (True, False)}[search_index]
    out: list[Target] = []
    for url in database_urls:
        for n in ([1] if url == "sqlite" else node_counts):
            for indexed in variants:
                if Target(url, n, indexed) not in out:
                    out.append(Target(url, n, indexed))
    return out


# What `--search-index off` drops after the migration: how an inbound message reaches the index (0023's names).
# On SQLite the two triggers that queue and index a new message (the index stays, for the triggers of deletes).
NO_SEARCH_INDEX = {"sqlite": ("DROP TRIGGER messages_fts_batch", "DROP TRIGGER messages_fts_queue"),
                   "postgresql": ("DROP INDEX ix_messages_text_search",)}


class FreshDatabase:
    """A new PostgreSQL database made through an admin URL, dropped afterwards."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        self.name = f"didchat_bench_{uuid.uuid4().hex[:12]}"
        self.url: str | None = None

    @property
    def plain(self) -> str:
        """The admin URL as asyncpg takes it."""
        return self.admin_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def create(self) -> str:
        admin = await asyncpg.connect(self.plain, timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        self.url = self.admin_url.rsplit("/", 1)[0] + f"/{self.name}"
        return self.url

    async def checkpoint(self) -> None:
        """Write out what creating the database (and dropping the last) left to the checkpointer, before the clock:
        in a run of a second or two that work otherwise lands in the measured window (measured: the server's CPU
        0.17-0.20 ms a message in 6,000-message runs right after another target, 0.05 in 30,000-message ones)."""
        admin = await asyncpg.connect(self.plain, timeout=10)
        try:
            await admin.execute("CHECKPOINT")
        finally:
            await admin.close()

    async def drop(self) -> None:
        if self.url is None:
            return
        admin = await asyncpg.connect(self.plain, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()
        self.url = None


# ---------------------------------------------------------------- the cluster

class Cluster:
    """`target.nodes` didchat processes on one config file, one fresh database and one Redis prefix.

    It has what common.head_config reads (url, port, dir, db_url, redis_url, redis_prefix), so a
    benchmark writes the same config for one node on its own and for a cluster."""

    def __init__(self, target: Target, label: str, keep: bool = False, redis_url: str | None = REDIS_URL):
        self.target, self.keep = target, keep
        self.dir = Path(tempfile.mkdtemp(prefix=f"didchat-bench-{label}-"))
        self.nodes = [ServerProcess(label, keep, folder=self.dir, name=f"node{i}") for i in range(target.nodes)]
        self.url, self.port = self.nodes[0].url, self.nodes[0].port
        self.config_path = self.dir / "didchat.yaml"
        self.db_url = f"sqlite+aiosqlite:///{self.dir}/didchat.db"
        self.database = FreshDatabase(target.database) if target.kind == "postgresql" else None
        self.redis_url = redis_url if self.database else None
        self.redis_prefix = f"bench-{uuid.uuid4().hex[:12]}"
        if target.nodes > 1 and not self.redis_url:
            raise ValueError("several nodes need Redis")

    def node_url(self, n: int) -> str:
        """The node that the n-th message goes to: round robin."""
        return self.nodes[n % len(self.nodes)].url

    async def create_database(self) -> None:
        """Before the config is written: it names the database."""
        if self.database:
            self.db_url = await self.database.create()

    async def start(self, config_text: str) -> None:
        self.config_path.write_text(config_text)
        await self._migrate()
        if not self.target.search_index:
            await self._drop_search_index()
        for node in self.nodes:
            await asyncio.to_thread(node.start, None, START_SECONDS)

    async def _migrate(self) -> None:
        log = self.dir / "migrate.log"
        with open(log, "wb") as out:
            proc = await asyncio.create_subprocess_exec(str(DIDCHAT), "migrate", "--config", str(self.config_path),
                                                        cwd=self.dir, stdout=out, stderr=out, env=didchat_env())
            try:
                code = await asyncio.wait_for(proc.wait(), START_SECONDS)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                code = "timeout"
        if code != 0:
            raise RuntimeError(f"didchat migrate: {code}\n{log.read_text(errors='replace')[-3000:]}")

    async def _drop_search_index(self) -> None:
        statements = NO_SEARCH_INDEX[self.target.kind]
        if self.database:
            db = await asyncpg.connect(self.db_url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
            try:
                for statement in statements:
                    await db.execute(statement)
            finally:
                await db.close()
            return
        with contextlib.closing(sqlite3.connect(self.db_url.split("///", 1)[1])) as db:
            for statement in statements:
                db.execute(statement)
            db.commit()

    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes if node.pid]

    def log_warnings(self) -> list[int]:
        return [node.log_warnings() for node in self.nodes]

    async def stop(self) -> None:
        for node in self.nodes:
            await asyncio.to_thread(node.stop)
        if self.database:
            await self.database.drop()
        if self.redis_url:
            await forget(self.redis_url, self.redis_prefix)
        if not self.keep:
            remove_dir(self.dir)


async def forget(redis_url: str, prefix: str) -> None:
    """Delete a benchmark's Redis keys (best effort: Redis carries nothing the database lacks)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url, socket_timeout=3)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    except (OSError, aioredis.RedisError) as err:
        print(f"  warning: could not delete Redis keys {prefix}*: {type(err).__name__}", file=sys.stderr)
    finally:
        await client.aclose()


# ---------------------------------------------------------------- CPU

class Meter:
    """CPU seconds over one run: each node's, PostgreSQL's (see the rules), this process's."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.nodes0 = [proc_cpu_seconds(pid) for pid in cluster.pids()]
        self.self0, self.wall0 = self_cpu_seconds(), time.perf_counter()
        self.first: dict[int, float] = {}  # PostgreSQL pid -> CPU when first seen (0 if born during the run)
        self.last: dict[int, float] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> Meter:
        self.batches0 = await batch_counts(self.cluster)
        if self.cluster.database:
            self.admin = await asyncpg.connect(self.cluster.database.plain, timeout=10)
            await self._sample(born=False)
            self._task = asyncio.create_task(self._sampling())
        return self

    async def _pg_pids(self) -> list[int]:
        rows = await self.admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 OR datname IS NULL",
                                      self.cluster.database.name)
        pids = [r["pid"] for r in rows]
        postmaster = parent_of(pids[0]) if pids else None
        return pids + ([postmaster] if postmaster else [])

    async def _sample(self, born: bool = True) -> None:
        for pid in await self._pg_pids():
            cpu = proc_cpu_seconds(pid)
            if cpu is None:
                continue
            self.first.setdefault(pid, 0.0 if born else cpu)
            self.last[pid] = cpu

    async def _sampling(self) -> None:
        while not self._stop.is_set():  # ends when stop() sets it
            try:
                await asyncio.wait_for(self._stop.wait(), SAMPLE_SECONDS)
            except TimeoutError:
                await self._sample()

    async def stop(self) -> dict:
        wall = max(1e-9, time.perf_counter() - self.wall0)
        nodes1 = [proc_cpu_seconds(pid) for pid in self.cluster.pids()]
        out = {"wall_s": round(wall, 3), "bench_cpu_s": round(self_cpu_seconds() - self.self0, 3),
               "node_cpu_s": [round(b - a, 3) if a is not None and b is not None else None
                              for a, b in zip(self.nodes0, nodes1)], "pg_cpu_s": None,
               "batch_units": [round((u1 - u0) / (b1 - b0), 1) if b1 > b0 else None
                               for (b0, u0), (b1, u1) in zip(self.batches0, await batch_counts(self.cluster))]}
        if self._task:
            self._stop.set()
            await self._task
            await self._sample()
            await self.admin.close()
            out["pg_cpu_s"] = round(sum(self.last[p] - self.first[p] for p in self.last), 3)
        return out


async def batch_counts(cluster: Cluster) -> list[tuple[float, float]]:
    """Each node's (commit batches, units in them) so far, from its /metrics ((0, 0) if unreadable)."""
    out = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for node in cluster.nodes:
            values = {"didchat_store_batches_total": 0.0, "didchat_store_batch_units_total": 0.0}
            try:
                async with http.get(f"{node.url}/metrics") as resp:
                    for line in (await resp.text()).splitlines():
                        name, _, value = line.partition(" ")
                        if name in values:
                            values[name] = float(value)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
            out.append((values["didchat_store_batches_total"], values["didchat_store_batch_units_total"]))
    return out


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def per_message(cpu: dict, messages: int, active: float | None = None) -> dict:
    """The figures derived from a run's CPU seconds and its message count. CPU % is over the run's
    active time (first send to last answer or push) when it says it, not the wait for what is missing."""
    wall, nodes = active or cpu["wall_s"], [c or 0.0 for c in cpu["node_cpu_s"]]
    out = {"node_cpu_pct": [round(100 * c / wall, 1) for c in nodes],
           "node_cpu_ms_per_msg": round(1000 * sum(nodes) / messages, 3) if messages else None,
           "bench_cpu_pct": round(100 * cpu["bench_cpu_s"] / wall, 1),
           "pg_cpu_pct": None, "pg_cpu_ms_per_msg": None}
    if cpu["pg_cpu_s"] is not None:
        out["pg_cpu_pct"] = round(100 * cpu["pg_cpu_s"] / wall, 1)
        out["pg_cpu_ms_per_msg"] = round(1000 * cpu["pg_cpu_s"] / messages, 3) if messages else None
    return out


# ---------------------------------------------------------------- the loop every benchmark runs

class Bench(Protocol):
    """One benchmark on one target. run() returns at least `messages` (how many completed: the
    denominator of CPU per message), `msgs_per_s` and `latency_ms` {p50, p99, max}; and
    `active_s` if it waited for what never came (CPU % is over the active time)."""

    name: str

    async def setup(self, cluster: Cluster) -> str:
        """Start what the nodes connect to (an SMSC, a provider API); the shared config text."""

    async def connect(self, cluster: Cluster) -> None:
        """After the nodes are up, before the clock: agents, conversations."""

    async def run(self, index: int) -> dict:
        """One measured run of --messages."""

    async def close(self) -> None:
        """Stop what setup and connect started."""


@dataclass
class Measured:
    """A target whose cluster is up, its bench connected, and its runs so far."""

    target: Target
    bench: Bench
    cluster: Cluster
    runs: list

    def result(self) -> dict:
        return {"target": self.target.label, "database": self.target.kind, "nodes": self.target.nodes,
                "search_index": self.target.search_index, "runs": self.runs, "server_log_warnings": self.cluster.log_warnings()}


async def start(target: Target, bench: Bench, args, started: list[Measured]) -> None:
    """Start a cluster for `target` and connect `bench` to it; appended to `started` before it can fail."""
    cluster = Cluster(target, bench.name, args.keep, args.redis or None)
    started.append(Measured(target, bench, cluster, []))
    print(f"{target.label}: {cluster.dir}", flush=True)
    await cluster.create_database()
    await cluster.start(await bench.setup(cluster))
    await bench.connect(cluster)


async def run_once(m: Measured, index: int) -> None:
    """One measured run, on a clean disk: what came before (another target's pages, a checkpoint's
    worth of PostgreSQL's) is written out before the clock starts."""
    os.sync()
    if m.cluster.database:
        await m.cluster.database.checkpoint()
    meter = await Meter(m.cluster).start()
    result = await m.bench.run(index)
    cpu = await meter.stop()
    result.update(cpu, **per_message(cpu, result["messages"], result.get("active_s")))
    m.runs.append(result)
    print(f"  {m.target.label} run {index + 1}: {run_line(result)}", flush=True)


async def stop(started: list[Measured]) -> None:
    for m in reversed(started):
        try:
            await m.bench.close()
        finally:
            await m.cluster.stop()


async def measure(targets: list[Target], make_bench, args) -> list[dict]:
    """Start every target, then run each --repeat times, run by run (run 1 of each, run 2 of each, ...):
    on a shared machine whose speed drifts, each round meets the same moment for every target."""
    started: list[Measured] = []
    try:
        for target in targets:
            await start(target, make_bench(target, args), args, started)
        if args.hold:
            pids = {m.target.label: m.cluster.pids() for m in started}
            print(f"  node pids {pids}; starting in {args.hold:g}s (attach a profiler now)", flush=True)
            await asyncio.sleep(args.hold)
        for index in range(args.repeat):
            for m in started:
                await run_once(m, index)
        return [m.result() for m in started]
    finally:
        await stop(started)


def measure_all(make_bench, args) -> list[dict]:
    """Every target, each on its own cluster and database, in one event loop: all up together and
    measured in turn, round by round (`measure`); with --sequential one target after the other, each
    stopped before the next starts. Why rounds: this machine's speed drifts by a third within minutes
    (SQLite 5,010 msg/s, then 6,786 in the same afternoon), so targets measured one after the other
    compared moments more than code."""
    chosen = targets(args.database_urls, args.nodes, args.search_index)
    if not args.sequential:
        return asyncio.run(measure(chosen, make_bench, args))
    return [asyncio.run(measure([target], make_bench, args))[0] for target in chosen]


def run_line(r: dict) -> str:
    lat = r["latency_ms"]
    return (f"{r['messages']} msgs, {r['msgs_per_s']} msg/s, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
            f"nodes CPU {'+'.join(map(str, r['node_cpu_pct']))} % = {r['node_cpu_ms_per_msg']} ms/msg, "
            f"PostgreSQL {r['pg_cpu_ms_per_msg'] if r['pg_cpu_ms_per_msg'] is not None else '-'} ms/msg")


# ---------------------------------------------------------------- report

def typical(result: dict) -> dict:
    """The run shown in the side-by-side table: the median by msg/s."""
    runs = sorted(result["runs"], key=lambda r: r["msgs_per_s"])
    return runs[(len(runs) - 1) // 2]


def per_round(r: dict, base: dict | None, key: str) -> float | None:
    """The median over rounds of `key` in r's run i over base's run i (runs i of all targets were
    measured one after the other, at the same moment of the machine: `measure`)."""
    if base is None or base is r or len(r["runs"]) != len(base["runs"]) or len(r["runs"]) < 2:
        return None
    ratios = [a[key] / b[key] for a, b in zip(r["runs"], base["runs"]) if a.get(key) and b.get(key)]
    return round(statistics.median(ratios), 2) if ratios else None


def projections(results: list[dict]) -> None:
    """Add the capacity projected per node to each result (in place); each is compared with the results of its
    own kind (with or without the search index)."""
    def alike(r: dict, database: str, nodes: int) -> dict | None:
        return next((o for o in results if (o["database"], o["nodes"], o.get("search_index", True))
                     == (database, nodes, r.get("search_index", True))), None)

    for r in results:
        t = typical(r)
        first = {db: alike(r, db, 1) for db in ("sqlite", "postgresql")}
        one = {db: typical(o)["msgs_per_s"] for db, o in first.items() if o}
        same = first.get(r["database"]) if r["nodes"] > 1 else None
        indexed = next((o for o in results if o["database"] == r["database"] and o["nodes"] == r["nodes"]
                        and o.get("search_index", True)), None) if not r.get("search_index", True) else None
        r["projected"] = {
            "rounds_x_indexed": per_round(r, indexed, "msgs_per_s"),
            "rounds_cpu_x_indexed": per_round(r, indexed, "node_cpu_ms_per_msg"),
            "rounds_pg_cpu_x_indexed": per_round(r, indexed, "pg_cpu_ms_per_msg"),
            "rounds_x_sqlite": per_round(r, first.get("sqlite"), "msgs_per_s") if r["database"] != "sqlite" else None,
            "rounds_x_one_node": per_round(r, same, "msgs_per_s"),
            "rounds_cpu_x_one_node": per_round(r, same, "node_cpu_ms_per_msg"),
            "msgs_per_s_per_node_core": round(1000 / t["node_cpu_ms_per_msg"], 1) if t["node_cpu_ms_per_msg"] else None,
            "pg_msgs_per_s_per_core": round(1000 / t["pg_cpu_ms_per_msg"], 1) if t["pg_cpu_ms_per_msg"] else None,
            "measured_per_added_node": (round((t["msgs_per_s"] - one[r["database"]]) / (r["nodes"] - 1), 1)
                                        if r["nodes"] > 1 and r["database"] in one else None),
            "x_sqlite": round(t["msgs_per_s"] / one["sqlite"], 2) if one.get("sqlite") and r["database"] != "sqlite" else None,
            "x_one_node": round(t["msgs_per_s"] / one[r["database"]], 2) if r["nodes"] > 1 and one.get(r["database"]) else None,
        }


COMMON_ROWS = [
    ("msg/s", ("msgs_per_s",)),
    ("latency p50 ms", ("latency_ms", "p50")), ("latency p99 ms", ("latency_ms", "p99")),
    ("latency max ms", ("latency_ms", "max")),
    ("node CPU % (each)", ("node_cpu_pct",)), ("node CPU ms/msg (all nodes)", ("node_cpu_ms_per_msg",)),
    ("PostgreSQL CPU %", ("pg_cpu_pct",)), ("PostgreSQL CPU ms/msg", ("pg_cpu_ms_per_msg",)),
    ("bench process CPU %", ("bench_cpu_pct",)),
    ("units per commit batch (each)", ("batch_units",)),
]
PROJECTED_ROWS = [
    ("msg/s x with the search index, rounds", ("rounds_x_indexed",)),
    ("node CPU ms/msg x with it, rounds", ("rounds_cpu_x_indexed",)),
    ("PostgreSQL CPU ms/msg x with it, rounds", ("rounds_pg_cpu_x_indexed",)),
    ("x SQLite (msg/s)", ("x_sqlite",)), ("x one node (msg/s)", ("x_one_node",)),
    ("x SQLite, median of rounds", ("rounds_x_sqlite",)), ("x one node, median of rounds", ("rounds_x_one_node",)),
    ("node CPU ms/msg x one node, rounds", ("rounds_cpu_x_one_node",)),
    ("measured msg/s per added node", ("measured_per_added_node",)),
    ("projected msg/s per node (1 core)", ("msgs_per_s_per_node_core",)),
    ("projected PostgreSQL msg/s (1 core)", ("pg_msgs_per_s_per_core",)),
]


def cell(d, path) -> str:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    if d is None:
        return "-"
    if isinstance(d, list):
        return "+".join(map(str, d))
    if isinstance(d, dict):
        return " ".join(f"{k}:{v}" for k, v in d.items()) or "0"
    return str(d)


def report(results: list[dict], rows: list[tuple[str, tuple[str, ...]]]) -> str:
    """Every target side by side (the median run of each), then each run when --repeat > 1."""
    projections(results)
    header = ("",) + tuple(r["target"] for r in results)
    table = [header] + [(label,) + tuple(cell(typical(r), path) for r in results) for label, path in COMMON_ROWS + rows]
    table += [(label,) + tuple(cell(r["projected"], path) for r in results) for label, path in PROJECTED_ROWS]
    table.append(("server log warnings",) + tuple(cell(r, ("server_log_warnings",)) for r in results))
    text = text_table(table)
    if max(len(r["runs"]) for r in results) > 1:
        text += "\n\n" + decay(results)
    return text


def decay(results: list[dict]) -> str:
    """msg/s of each run on one database, and whether they stay within DECAY_LIMIT of each other."""
    count = max(len(r["runs"]) for r in results)
    table = [("run",) + tuple(r["target"] for r in results)]
    for i in range(count):
        table.append((str(i + 1),) + tuple(cell(r["runs"][i], ("msgs_per_s",)) if i < len(r["runs"]) else "-"
                                           for r in results))
    spreads = []
    for r in results:
        rates = [run["msgs_per_s"] for run in r["runs"]]
        spread = (max(rates) - min(rates)) / max(1e-9, min(rates))
        r["decay"] = {"spread": round(spread, 3), "within_limit": spread <= DECAY_LIMIT,
                      "median_msgs_per_s": statistics.median(rates)}
        spreads.append(f"{100 * spread:.1f} % {'MET' if spread <= DECAY_LIMIT else 'NOT MET'}")
    table.append((f"spread (max-min)/min <= {100 * DECAY_LIMIT:g} %",) + tuple(spreads))
    return text_table(table)


def add_arguments(parser: argparse.ArgumentParser, messages: int) -> None:
    """The options every benchmark on nodes takes."""
    parser.add_argument("--database-url", action="append", dest="database_urls", metavar="URL",
                        help=f"'sqlite' or a PostgreSQL admin URL (a fresh database is made through it and "
                             f"dropped); repeatable; default: sqlite and {PG_ADMIN}")
    parser.add_argument("--nodes", action="append", type=int, metavar="N",
                        help="didchat processes on each PostgreSQL database; repeatable; default: 1 and 2")
    parser.add_argument("--redis", default=REDIS_URL, help="Redis the PostgreSQL nodes share ('' for none: one node only)")
    parser.add_argument("--messages", type=int, default=messages, help="messages per run")
    parser.add_argument("--rate", type=float, default=0.0, help="fixed rate, msgs/s, open loop (0: as fast as it goes)")
    parser.add_argument("--repeat", type=int, default=1, help="consecutive runs on one database (decay check)")
    parser.add_argument("--hold", type=float, default=0.0, help="pause before the runs (to attach a profiler)")
    parser.add_argument("--keep", action="store_true", help="keep each target's temp dir (config, logs, SQLite file)")
    parser.add_argument("--search-index", choices=("on", "off", "both"), default="on",
                        help="the message text's search index: as migrated (on), dropped after the migration (off), "
                             "or each target both ways, side by side (both): what the index costs")
    parser.add_argument("--sequential", action="store_true",
                        help="one target after the other, each stopped before the next starts (default: all up, "
                             "measured round by round)")


def check_arguments(parser: argparse.ArgumentParser, args) -> None:
    args.database_urls = args.database_urls or ["sqlite", PG_ADMIN]
    args.nodes = args.nodes or [1, 2]
    bad = [u for u in args.database_urls if u != "sqlite" and not u.startswith(("postgresql://", "postgresql+asyncpg://"))]
    if bad:
        parser.error(f"--database-url: 'sqlite' or postgresql://..., not {bad[0]!r}")
    if not (all(1 <= n <= 8 for n in args.nodes) and 0 < args.messages <= 1_000_000 and args.rate >= 0
            and 1 <= args.repeat <= 20):
        parser.error("need 1 <= --nodes <= 8, 0 < --messages <= 1e6, --rate >= 0, 1 <= --repeat <= 20")
    if max(args.nodes) > 1 and not args.redis and any(u != "sqlite" for u in args.database_urls):
        parser.error("several nodes share Redis: give --redis URL (or --nodes 1)")
