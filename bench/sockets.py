"""Agent sockets at scale: 1,000 / 5,000 / 10,000 Socket.IO connections held on one node, then a
reconnect storm (issue 9, point 6).

It starts `didchat run` (one node on a SQLite file by default; `--database-url` a PostgreSQL
server, through which a fresh database is created and dropped; `--nodes 2` two nodes on it, each
with its own port), with `--users` agents (one personal number each, one cheap argon2 hash for
all: the benchmark is not about logins), logs every agent in once (one token per agent) and
holds the connections from `--clients` client processes. A client is raw Socket.IO v5 over
engine.io v4 on aiohttp websockets (open packet, `40/agent,{token}`, `42/agent,[event, data]`,
pongs): much lighter than a python-socketio client. Socket i belongs to agent i % users and to
node i % nodes.

For each level it reports:
- connect rate: connects/s while ramping up (at most --connect-concurrency in flight per client
  process) and the server's CPU ms per connect over the ramp;
- RSS of the server (VmRSS) holding the level, and the increase per connection over the idle server;
- idle CPU: the server's CPU % of one core over --idle-seconds with nothing but pings;
- the longest event-loop stall: from the server's own monitor (`didchat_event_loop_stall_*` in
  /metrics: the histogram's increase over the measured windows, and the longest collector pass);
- push p99: during --push-seconds, --push-rate signed webhooks a second to random agents' numbers;
  each carries its send time (wall clock; clients on the same machine), every socket of the agent
  timestamps its `message` push; p50/p99/max over every socket's receipt.
Then the storm: every socket closes, all reconnect at once; the time until all are connected.

Cores: the machine has 2; by default (one node) the server is pinned to CPU 0 and the client
processes and this process to CPU 1 (--no-pin to let the scheduler share them); with two nodes
nothing is pinned (the nodes, PostgreSQL and the clients share both). Each level prints the
client processes' CPU too. `--gc-tuning off` runs the server with DIDCHAT_GC_TUNING=off
(Python's collector as it is: the "before"); `both` runs off then on, side by side.

    .venv/bin/python bench/sockets.py                                  # 1k/5k/10k, gc tuning on
    .venv/bin/python bench/sockets.py --gc-tuning both --levels 1000,10000
    .venv/bin/python bench/sockets.py --levels 10000 --nodes 2 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

Everything listens and connects on 127.0.0.1; every wait is bounded.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import sys
import textwrap
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from common import (  # noqa: E402
    PASSWORD,
    RESULTS_DIR,
    SECRET_KEY,
    ServerProcess,
    code_line,
    customer_numbers,
    free_port,
    latency_summary,
    machine,
    machine_line,
    params_of,
    text_table,
    use_uvloop,
    write_results,
)
from nodes import REDIS_URL, forget  # noqa: E402

from chat.cli import signed_sms  # noqa: E402
from chat.config import load_config  # noqa: E402

RESULTS = RESULTS_DIR / "sockets.json"
# One argon2id hash of PASSWORD with the smallest parameters (argon2 verifies with the hash's own).
CHEAP_HASH = "$argon2id$v=19$m=8,t=1,p=1$tEAhRr09j/L8UpOPL3fOIQ$din+iMNdCtRY2QqFMGPeo5OwMsLNMNyS9gVwSF89l1E"
TARGETS = {"rss_mib_at_10000": 1024, "stall_ms": 100, "push_p99_ms": 100, "storm_s": 30}
NAMESPACE = "/agent"


def agent_number(i: int) -> str:
    return f"+1646555{2000 + i:04d}"


# ---------------------------------------------------------------- the client processes

class Sockets:
    """Raw Socket.IO clients in one process: connect, hold (answer pings), timestamp pushes."""

    def __init__(self, assigned: list[tuple[str, str]], concurrency: int):
        self.assigned = assigned  # (node url, token) of each socket this process holds
        self.concurrency = concurrency
        self.open: dict[int, aiohttp.ClientWebSocketResponse] = {}
        self.readers: dict[int, asyncio.Task] = {}
        self.latencies: list[float] = []
        self.failures = 0
        self.dropped = 0

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True),
                                          timeout=aiohttp.ClientTimeout(total=None))

    async def connect_up_to(self, count: int, deadline: float) -> dict:
        """Open sockets 0..count-1 of this process (those not open), `concurrency` at a time."""
        todo = [i for i in range(min(count, len(self.assigned))) if i not in self.open]
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(i: int) -> None:
            async with gate:
                while time.monotonic() < deadline and not await self._connect(i):
                    self.failures += 1
                    await asyncio.sleep(0.2 + random.random() * 0.3)

        await asyncio.gather(*(one(i) for i in todo))
        return {"connected": len(self.open), "seconds": time.perf_counter() - started, "failures": self.failures}

    async def _connect(self, i: int) -> bool:
        url, token = self.assigned[i]
        try:
            async with asyncio.timeout(20):
                ws = await self.http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket", max_msg_size=0,
                                                timeout=aiohttp.ClientWSTimeout(ws_close=2), compress=0)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False
        try:
            async with asyncio.timeout(20):
                opened = await ws.receive_str()
                if not opened.startswith("0"):
                    raise ValueError(opened[:40])
                await ws.send_str(f"40{NAMESPACE}," + json.dumps({"token": token}))
                while True:  # a ping may come first
                    answer = await ws.receive_str()
                    if answer == "2":
                        await ws.send_str("3")
                        continue
                    break
            if not answer.startswith(f"40{NAMESPACE},"):
                raise ValueError(answer[:60])
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, TypeError):
            await ws.close()
            return False
        self.open[i] = ws
        self.readers[i] = asyncio.create_task(self._read(i, ws))
        return True

    async def _read(self, i: int, ws) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = msg.data
                if data == "2":
                    await ws.send_str("3")
                elif data.startswith(f'42{NAMESPACE},["message"'):
                    self._pushed(data)
        except (aiohttp.ClientError, OSError):
            pass
        if self.open.get(i) is ws:
            del self.open[i]
            self.dropped += 1

    def _pushed(self, data: str) -> None:
        now = time.time()
        try:
            text = json.loads(data[len(f"42{NAMESPACE},"):])[1].get("text", "")
        except (ValueError, AttributeError, IndexError):
            return
        if text.startswith("push "):
            self.latencies.append(now - float(text.split()[2]))

    async def close_all(self) -> None:
        sockets, readers = list(self.open.values()), list(self.readers.values())
        self.open.clear()
        self.readers.clear()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


def client_process(assigned, concurrency: int, commands, answers, cpu: int | None) -> None:
    """Entry point of one client process: obey commands until "stop"."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    use_uvloop()
    asyncio.run(obey(Sockets(assigned, concurrency), commands, answers))


async def obey(sockets: Sockets, commands, answers) -> None:
    await sockets.start()
    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, commands.get)
        if command == "connect":
            answer = await sockets.connect_up_to(*arg)
        elif command == "take":  # latencies recorded since the last take
            answer, sockets.latencies = {"latencies": sockets.latencies}, []
        elif command == "close":
            await sockets.close_all()
            answer = {}
        else:
            await sockets.close_all()
            await sockets.http.close()
            answers.put({})
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        answer.update(open=len(sockets.open), dropped=sockets.dropped, cpu=usage.ru_utime + usage.ru_stime)
        answers.put(answer)


class Clients:
    """The client processes, each holding its share of the sockets."""

    def __init__(self, assigned: list[tuple[str, str]], processes: int, concurrency: int, cpu: int | None):
        ctx = multiprocessing.get_context("spawn")
        self.pipes = []
        for p in range(processes):
            commands, answers = ctx.Queue(), ctx.Queue()
            proc = ctx.Process(target=client_process, daemon=True,
                               args=(assigned[p::processes], concurrency, commands, answers, cpu))
            proc.start()
            self.pipes.append((proc, commands, answers))
        self.processes = processes

    def ask(self, command: str, arg=None, timeout: float = 300) -> list[dict]:
        for _, commands, _ in self.pipes:
            commands.put((command, arg))
        return [answers.get(timeout=timeout) for _, _, answers in self.pipes]

    def connect(self, total: int, limit_s: float) -> list[dict]:
        share = [len(range(p, total, self.processes)) for p in range(self.processes)]
        deadline = time.monotonic() + limit_s  # monotonic clocks are system-wide on Linux
        for (_, commands, _), n in zip(self.pipes, share):
            commands.put(("connect", (n, deadline)))
        return [answers.get(timeout=limit_s + 60) for _, _, answers in self.pipes]

    def stop(self) -> None:
        try:
            self.ask("stop", timeout=30)
        finally:
            for proc, _, _ in self.pipes:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()


# ---------------------------------------------------------------- the server side

def config_text(server: ServerProcess, db_url: str, users: int, redis: str | None = None) -> str:
    """`users` agents (one number each, the same cheap hash), one Twilio connector for their numbers;
    with `redis` ("url prefix") the nodes share it, as a cluster does."""
    people = "\n".join(f'  - {{name: a{i:05d}, password_hash: "{CHEAP_HASH}"}}' for i in range(users))
    numbers = "\n".join(f'  - {{number: "{agent_number(i)}", user: a{i:05d}}}' for i in range(users))
    listed = ", ".join(f'"{agent_number(i)}"' for i in range(users))
    return textwrap.dedent(f"""\
        public_url: {server.url}
        host: 127.0.0.1
        port: {server.port}
        data_dir: "{server.dir}"
        database_url: "{db_url}"
        secret_key: "{SECRET_KEY}"
        presence_grace_seconds: 0
        token_minutes: 240
        log_level: warning
        connectors:
          - type: twilio
            name: tw
            account_sid: AC{'0' * 32}
            auth_token: {'t' * 32}
            api_base: http://127.0.0.1:{free_port()}
            numbers: [{listed}]
        """) + _cluster_lines(redis) + "users:\n" + people + "\naccess_numbers:\n" + numbers + "\n"


def _cluster_lines(redis: str | None) -> str:
    if redis is None:
        return ""
    url, prefix = redis.split()
    return f'redis_url: "{url}"\ncluster: {{redis_prefix: "{prefix}"}}\n'


class Cluster:
    """`nodes` didchat processes on one database (a fresh PostgreSQL database, or node 0's SQLite file)."""

    def __init__(self, args, tuning: str):
        self.args, self.tuning = args, tuning
        self.servers = [ServerProcess(f"sockets{n}") for n in range(args.nodes)]
        self.pg_name = None
        self.redis = f"{args.redis} bench-sockets-{uuid.uuid4().hex[:10]}" if args.nodes > 1 else None

    async def start(self) -> None:
        db_url = self.servers[0].db_url
        if self.args.database_url != "sqlite":
            self.pg_name = f"didchat_bench_{uuid.uuid4().hex[:10]}"
            admin = await asyncpg.connect(self.args.database_url.replace("+asyncpg", ""))
            await admin.execute(f'CREATE DATABASE "{self.pg_name}"')
            await admin.close()
            db_url = self.args.database_url.rsplit("/", 1)[0] + f"/{self.pg_name}"
        os.environ["DIDCHAT_GC_TUNING"] = self.tuning
        text = config_text(self.servers[0], db_url, self.args.users, self.redis)  # one file for all: a cluster checks
        for server in self.servers:  # one at a time: the first runs the migrations
            server.start(text, timeout=120)
            if self.args.pin and self.args.nodes == 1:
                os.sched_setaffinity(server.pid, {0})

    async def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.pg_name:
            admin = await asyncpg.connect(self.args.database_url.replace("+asyncpg", ""))
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            await admin.close()
        if self.redis:
            await forget(*self.redis.split())

    def rss_mib(self) -> list[float]:
        out = []
        for server in self.servers:
            for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        return out

    def cpu(self) -> list[float]:
        return [s.cpu_seconds() or 0.0 for s in self.servers]

    async def scrape(self, http: aiohttp.ClientSession) -> list[dict]:
        out = []
        for server in self.servers:
            async with http.get(f"{server.url}/metrics") as answer:
                out.append(parse_metrics(await answer.text()))
        return out


def parse_metrics(text: str) -> dict:
    """name{labels} -> value of the samples this benchmark reads."""
    wanted = ("didchat_event_loop_stall", "didchat_gc_", "didchat_agents_connected")
    out = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def stall_delta(before: dict, after: dict) -> dict:
    """From two scrapes: stalls over 100 ms, the bucket of the longest stall, the longest collector pass's bucket."""
    def buckets(prefix: str) -> list[tuple[float, float]]:
        rows = []
        for key, value in after.items():
            if key.startswith(prefix + "_bucket{") and 'le="+Inf"' not in key:
                le = float(key.split('le="')[1].split('"')[0])
                rows.append((le, value - before.get(key, 0.0)))
        return sorted(rows)

    def longest(rows: list[tuple[float, float]]) -> str:
        total = max((n for _, n in rows), default=0)
        inf = [le for le, n in rows if n < total]
        return f">{inf[-1] * 1000:g} ms" if inf else f"<={rows[0][0] * 1000:g} ms" if rows else "-"

    stalls = buckets("didchat_event_loop_stall_seconds")
    count = after.get("didchat_event_loop_stall_seconds_count", 0) - before.get("didchat_event_loop_stall_seconds_count", 0)
    over = count - dict(stalls).get(0.1, 0)
    gc_rows: dict[str, dict[float, float]] = {}
    for key, value in after.items():
        if key.startswith("didchat_gc_pause_seconds_bucket{") and 'le="+Inf"' not in key:
            generation = key.split('generation="')[1].split('"')[0]
            le = float(key.split('le="')[1].split('"')[0])
            gc_rows.setdefault(generation, {})[le] = value - before.get(key, 0.0)
    cpu = {key.split('generation="')[1].split('"')[0]: round(1000 * value, 1) for key, value in after.items()
           if key.startswith("didchat_gc_longest_pass_cpu_seconds{")}
    return {"ticks": int(count), "stalls_over_100ms": int(over), "longest_stall": longest(stalls),
            "longest_gc_pass": {g: longest(sorted(rows.items())) for g, rows in sorted(gc_rows.items())},
            "longest_gc_pass_cpu_ms_since_start": cpu,
            "stall_max_gauge_ms": round(1000 * after.get("didchat_event_loop_stall_max_seconds", 0.0), 1),
            "gc_reclaims": int(after.get("didchat_gc_reclaims", 0) - before.get("didchat_gc_reclaims", 0))}


async def login_all(cluster: Cluster, users: int) -> list[str]:
    """One token per agent (through node 0), a few logins at a time (the login queue is small)."""
    url = cluster.servers[0].url
    tokens: list[str | None] = [None] * users
    gate = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as http:
        async def one(i: int) -> None:
            async with gate:
                for _ in range(20):
                    async with http.post(f"{url}/api/login", json={"username": f"a{i:05d}", "password": PASSWORD}) as r:
                        if r.status == 200:
                            tokens[i] = (await r.json())["token"]
                            return
                    await asyncio.sleep(0.2)
                raise RuntimeError(f"login a{i:05d} failed: {r.status}")

        await asyncio.gather(*(one(i) for i in range(users)))
    return [t for t in tokens if t]


async def push_window(cluster: Cluster, args, level: int) -> dict:
    """--push-rate webhooks a second for --push-seconds to random agents who have a socket; answers counted."""
    server = cluster.servers[0]
    config = load_config(server.config_path)
    conn = config.connector_of(agent_number(0))
    senders = customer_numbers(200)
    owners = min(level, args.users)
    rng = random.Random(level)
    statuses: dict[str, int] = {}
    count = int(args.push_rate * args.push_seconds)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        async def one(n: int) -> None:
            await asyncio.sleep(max(0.0, t0 + n / args.push_rate - time.perf_counter()))
            node = cluster.servers[n % len(cluster.servers)]
            to = agent_number(rng.randrange(owners))
            url, body, headers = signed_sms(config, conn, senders[n % len(senders)], to, f"push {n} {time.time():.6f}",
                                            f"SM{uuid.uuid4().hex}")
            url = url.replace(server.url, node.url)
            try:
                async with http.post(url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as r:
                    statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                statuses[type(err).__name__] = statuses.get(type(err).__name__, 0) + 1

        await asyncio.gather(*(one(n) for n in range(count)))
    return {"webhooks": count, "answers": statuses}


# ---------------------------------------------------------------- one run

async def run_levels(args, tuning: str) -> dict:
    cluster = Cluster(args, tuning)
    clients = None
    out: dict = {"gc_tuning": tuning, "levels": {}}
    try:
        await cluster.start()
        tokens = await login_all(cluster, args.users)
        await asyncio.sleep(args.settle)
        out["idle_rss_mib"] = [round(r, 1) for r in cluster.rss_mib()]  # the baseline: started, agents logged in
        top = max(args.levels)
        assigned = [(cluster.servers[i % args.nodes].url, tokens[i % len(tokens)]) for i in range(top)]
        pin = 1 if args.pin and args.nodes == 1 else None
        clients = Clients(assigned, args.clients, args.connect_concurrency, pin)
        async with aiohttp.ClientSession() as http:
            for level in args.levels:
                out["levels"][level] = await one_level(cluster, clients, http, args, level, out["idle_rss_mib"])
                print_level(level, out["levels"][level])
            if args.storm:
                out["storm"] = await storm(cluster, clients, http, args, top)
                print(f"  storm: {json.dumps(out['storm'])}", flush=True)
        out["server_warnings"] = [s.log_warnings() for s in cluster.servers]
    finally:
        if clients:
            clients.stop()
        await cluster.stop()
    return out


async def one_level(cluster: Cluster, clients: Clients, http, args, level: int, idle_rss: list[float]) -> dict:
    cpu0, t0, ccpu0 = cluster.cpu(), time.perf_counter(), sum(a["cpu"] for a in clients.ask("take"))
    before_open = sum(a["open"] for a in clients.ask("take"))
    answers = clients.connect(level, args.connect_limit)
    ramp = time.perf_counter() - t0
    cpu1 = cluster.cpu()
    held = sum(a["open"] for a in answers)
    new = max(1, held - before_open)
    row: dict = {"held": held, "connect_failures": sum(a["failures"] for a in answers),
                 "connects_per_s": round(new / ramp, 1), "ramp_s": round(ramp, 1),
                 "server_cpu_ms_per_connect": round(1000 * (sum(cpu1) - sum(cpu0)) / new, 2)}
    await asyncio.sleep(args.settle)
    scrape0 = await cluster.scrape(http)
    cpu_idle0, ccpu_idle0, t_idle0 = cluster.cpu(), sum(a["cpu"] for a in clients.ask("take")), time.perf_counter()
    await asyncio.sleep(args.idle_seconds)
    wall = time.perf_counter() - t_idle0
    cpu_idle1, ccpu_idle1 = cluster.cpu(), sum(a["cpu"] for a in clients.ask("take"))
    rss = cluster.rss_mib()
    row.update(rss_mib=[round(r, 1) for r in rss],
               kib_per_connection=round(1024 * (sum(rss) - sum(idle_rss)) / max(1, held), 1),
               idle_cpu_pct=[round(100 * (b - a) / wall, 1) for a, b in zip(cpu_idle0, cpu_idle1)],
               clients_idle_cpu_pct=round(100 * (ccpu_idle1 - ccpu_idle0) / wall, 1))
    pushed = await push_window(cluster, args, level)
    await asyncio.sleep(2)  # the last pushes arrive
    latencies = [x for a in clients.ask("take") for x in a["latencies"]]
    scrape1 = await cluster.scrape(http)
    row.update(push=dict(latency_summary(latencies), receipts=len(latencies), **pushed),
               loop=[stall_delta(a, b) for a, b in zip(scrape0, scrape1)],
               still_open=sum(a["open"] for a in clients.ask("take")),
               dropped=sum(a["dropped"] for a in clients.ask("take")),
               clients_total_cpu_s=round(sum(a["cpu"] for a in clients.ask("take")) - ccpu0, 1))
    return row


async def storm(cluster: Cluster, clients: Clients, http, args, total: int) -> dict:
    """Every socket closes; all reconnect at once: seconds until every one is connected again."""
    clients.ask("close")
    await asyncio.sleep(args.settle)
    cpu0, t0 = cluster.cpu(), time.perf_counter()
    answers = clients.connect(total, args.connect_limit)
    seconds = time.perf_counter() - t0
    cpu1 = cluster.cpu()
    held = sum(a["open"] for a in answers)
    return {"sockets": total, "connected": held, "seconds": round(seconds, 1), "connects_per_s": round(held / seconds, 1),
            "retries": sum(a["failures"] for a in answers), "nodes": args.nodes,
            "server_cpu_ms_per_connect": [round(1000 * (b - a) / max(1, held / args.nodes), 2) for a, b in zip(cpu0, cpu1)]}


def print_level(level: int, row: dict) -> None:
    print(f"  {level:>6} held={row['held']} rss={row['rss_mib']} MiB ({row['kib_per_connection']} KiB/conn) "
          f"idle cpu={row['idle_cpu_pct']}% clients={row['clients_idle_cpu_pct']}% "
          f"loop={json.dumps(row['loop'])} push={json.dumps(row['push'])} "
          f"connect={row['connects_per_s']}/s {row['server_cpu_ms_per_connect']} ms cpu", flush=True)


def summary(runs: list[dict], args) -> str:
    rows = [("level", *[f"gc {r['gc_tuning']}" for r in runs])]

    def add(label: str, get) -> None:
        for level in args.levels:
            rows.append((f"{label} @{level}", *[str(get(r["levels"][level])) for r in runs]))

    add("held", lambda x: x["held"])
    add("server RSS MiB", lambda x: "+".join(f"{v:g}" for v in x["rss_mib"]))
    add("KiB/connection", lambda x: x["kib_per_connection"])
    add("idle CPU % (server)", lambda x: "+".join(f"{v:g}" for v in x["idle_cpu_pct"]))
    add("idle CPU % (clients)", lambda x: x["clients_idle_cpu_pct"])
    add("longest stall", lambda x: " ".join(n["longest_stall"] for n in x["loop"]))
    add("stalls >100 ms", lambda x: sum(n["stalls_over_100ms"] for n in x["loop"]))
    add("longest gc pass (wall)", lambda x: " ".join(",".join(f"g{g}{v}" for g, v in n["longest_gc_pass"].items())
                                                     for n in x["loop"]))
    add("longest gc pass CPU ms", lambda x: " ".join(json.dumps(n["longest_gc_pass_cpu_ms_since_start"]) for n in x["loop"]))
    add("push p50/p99/max ms", lambda x: f"{x['push']['p50']}/{x['push']['p99']}/{x['push']['max']}")
    add("connects/s", lambda x: x["connects_per_s"])
    add("server CPU ms/connect", lambda x: x["server_cpu_ms_per_connect"])
    if args.storm:
        rows.append((f"storm {max(args.levels)} s", *[str(r.get("storm", {}).get("seconds")) for r in runs]))
        rows.append(("storm connects/s", *[str(r.get("storm", {}).get("connects_per_s")) for r in runs]))
    return text_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1000,5000,10000", help="connections held, in order (comma-separated)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--connect-concurrency", type=int, default=100, help="connects in flight per client process")
    parser.add_argument("--connect-limit", type=float, default=300, help="seconds a level's ramp may take")
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--push-seconds", type=float, default=20)
    parser.add_argument("--push-rate", type=float, default=20, help="webhooks per second during the push window")
    parser.add_argument("--settle", type=float, default=3, help="seconds between a ramp and the measured windows")
    parser.add_argument("--database-url", default="sqlite",
                        help="sqlite, or a PostgreSQL server URL (a fresh database is made through it)")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--redis", default=REDIS_URL, help="the Redis several nodes share (one node uses none)")
    parser.add_argument("--gc-tuning", choices=("on", "off", "both"), default="on")
    parser.add_argument("--no-storm", dest="storm", action="store_false")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    if args.nodes > 1 and args.database_url == "sqlite":
        parser.error("--nodes > 1 needs --database-url postgresql+asyncpg://...")
    info = machine()
    print(machine_line(info))
    print(code_line())
    pinning = ("server on CPU 0; clients and this process on CPU 1" if args.pin and args.nodes == 1
               else "not pinned: nodes, database and clients share both cores")
    print(f"database={args.database_url.split('@')[-1]} nodes={args.nodes} users={args.users} "
          f"client processes={args.clients}; cores: {pinning}", flush=True)
    if args.pin and args.nodes == 1:
        os.sched_setaffinity(0, {1})
    use_uvloop()
    runs = []
    for tuning in (("off", "on") if args.gc_tuning == "both" else (args.gc_tuning,)):
        print(f"gc tuning {tuning}:", flush=True)
        runs.append(asyncio.run(run_levels(args, tuning)))
    print()
    print(summary(runs, args))
    write_results(args.output, {"machine": info, "params": params_of(args), "cores": pinning, "runs": runs})


if __name__ == "__main__":
    main()
