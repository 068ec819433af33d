"""Login flood benchmark: webhook ingest msg/s with and without 50 parallel wrong logins.

For each database (`--database-url`, repeatable; default a SQLite file) and each kind of flood
it starts `didchat run` on a fresh database and alternates, --rounds times, quiet and flood
windows of --seconds each (quiet, flood, quiet, ..., quiet, after a warm-up), so that whatever
else loads the machine weighs on both alike:

  ingest      bench/webhook_ingest.py's max-throughput phase: --concurrency closed-loop senders
              of signed Twilio webhooks; stored msgs/s = HTTP 200s per second;
  1 address   --workers clients post wrong passwords, each for new user names, all from
              127.0.0.1: the per-address limit stops them quickly;
  N addresses the same, each worker from its own loopback address (127.0.1.x): the address
              limit takes long to bite, so the bound on password hashing is what holds.

The flood runs in its own process (it must not slow the ingest client), is paused in the quiet
windows and starts --flood-lead seconds before a flood window's ingest. A worker sends its next
guess as soon as it is answered 401; answered 429 or 503 it waits the Retry-After, at most
--flood-max-pause seconds (a client that ignores Retry-After and spins is a plain request flood,
a matter for the proxy). Reported per database and flood: the median stored msgs/s of the quiet
and of the flood windows, and the ratio (each flood window's rate over the mean of the quiet
windows either side; the median of those; target: the flood keeps >= 80 %), the flood's answers
and hashes per second. Login throttling has its default `login:` settings.

For PostgreSQL give the server's URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres:
each run creates a fresh database through it and drops it afterwards. Everything runs on
127.0.0.1 and every loop is bounded in count and time.

    .venv/bin/python bench/login_flood.py [--seconds 3 --rounds 4] \\
        [--database-url sqlite --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from common import (  # noqa: E402
    RESULTS_DIR,
    Agent,
    CpuMeter,
    ServerProcess,
    customer_numbers,
    machine,
    machine_line,
    params_of,
    text_table,
    use_uvloop,
    write_results,
)
from webhook_ingest import ALICE_NUMBER, build_requests, config_text, phase_max  # noqa: E402

RESULTS = RESULTS_DIR / "login_flood.json"
TARGET_RATIO = 0.80
FLOODS = ("1 address", "N addresses")
ANSWERS = ("401", "429", "503", "other")


# ---------------------------------------------------------------- the flood, in its own process

def flood_addresses(kind: str, workers: int) -> list[str]:
    """Each worker's source address."""
    if kind == "1 address":
        return ["127.0.0.1"] * workers
    return [f"127.0.1.{1 + i % 250}" for i in range(workers)]


def flood_process(url: str, addresses: list[str], max_pause: float, events, counts, limit_s: float) -> None:
    """Entry point of the flood's process: guess while `running` is set, until `stop` (or `limit_s`)."""
    ready, running, stop = events
    use_uvloop()
    ready.set()  # imports done: its start-up no longer competes with the windows
    asyncio.run(flood(url, addresses, max_pause, running, stop, counts, limit_s))


async def flood(url: str, addresses: list[str], max_pause: float, running, stop, counts, limit_s: float) -> None:
    """Wrong passwords from every address in parallel, a new user name each time; answers counted."""
    deadline = time.monotonic() + limit_s

    async def worker(i: int, address: str) -> None:
        connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            n = 0
            while not stop.is_set() and time.monotonic() < deadline:
                if not running.is_set():
                    await asyncio.sleep(0.05)
                    continue
                n += 1
                status, retry = await guess(http, url, f"flood{i}-{n}")
                with counts.get_lock():
                    counts[ANSWERS.index(status) if status in ANSWERS else 3] += 1
                if retry is not None:
                    await asyncio.sleep(min(max_pause, retry))

    await asyncio.gather(*(worker(i, a) for i, a in enumerate(addresses)))


async def guess(http: aiohttp.ClientSession, url: str, name: str) -> tuple[str, float | None]:
    """One wrong login: (its status, or the error's name; the Retry-After to honour, if any)."""
    try:
        async with http.post(f"{url}/api/login", json={"username": name, "password": "wrong-guess"},
                             timeout=aiohttp.ClientTimeout(total=30)) as answer:
            await answer.read()
            if answer.status == 401:
                return "401", None
            retry = answer.headers.get("Retry-After")
            return str(answer.status), float(retry) if retry else 1.0
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        return type(err).__name__, 1.0


class Flood:
    """The flood's process, paused and resumed around the flood windows."""

    def __init__(self, url: str, addresses: list[str], args):
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.running, self.stopping = ctx.Event(), ctx.Event(), ctx.Event()
        self.counts = ctx.Array("q", len(ANSWERS))
        limit = (args.rounds * 2 + 2) * (args.seconds + args.drain_timeout + args.flood_lead) + 120
        self.proc = ctx.Process(target=flood_process, daemon=True, args=(
            url, addresses, args.flood_max_pause, (self.ready, self.running, self.stopping), self.counts, limit))
        self.proc.start()
        if not self.ready.wait(60):
            raise RuntimeError("the flood's process did not start within 60 s")

    def snapshot(self) -> list[int]:
        with self.counts.get_lock():
            return list(self.counts)

    def stop(self) -> None:
        self.stopping.set()
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()


# ---------------------------------------------------------------- databases

class FreshDatabase:
    """A SQLite file in the server's folder, or a new PostgreSQL database dropped afterwards."""

    def __init__(self, url: str):
        self.admin_url, self.url = url, None
        self.name = f"didchat_bench_{uuid.uuid4().hex[:12]}"

    @property
    def kind(self) -> str:
        return "sqlite" if self.admin_url == "sqlite" else "postgresql"

    async def create(self, server: ServerProcess) -> str:
        if self.kind == "sqlite":
            return server.db_url
        admin = await asyncpg.connect(self._plain(), timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        self.url = self.admin_url.rsplit("/", 1)[0] + f"/{self.name}"
        return self.url

    async def drop(self) -> None:
        if self.url is None:
            return
        admin = await asyncpg.connect(self._plain(), timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()

    def _plain(self) -> str:
        return self.admin_url.replace("postgresql+asyncpg://", "postgresql://")


# ---------------------------------------------------------------- windows

async def run_floods(db_url: str, kind: str, args, senders: list[str]) -> dict:
    """One server on a fresh database: quiet and flood windows in turn, --rounds times."""
    server = ServerProcess(kind.replace(" ", "-"), keep=args.keep)
    database = FreshDatabase(db_url)
    server.db_url = await database.create(server)
    print(f"{database.kind} / {kind}: didchat on {server.url}", flush=True)
    server.start(config_text(server), timeout=60)
    agent, flood_proc = Agent(server.url), None
    try:
        per_window = int(6000 * args.seconds)
        reqs = build_requests(server, per_window * (2 * args.rounds + 2), senders, uuid.uuid4().hex[:12])
        await agent.connect()
        flood_proc = Flood(server.url, flood_addresses(kind, args.workers), args)
        await phase_max(server, agent, reqs[:per_window], argparse.Namespace(**{**vars(args), "seconds": 1}))  # warm-up:
        # the conversations exist before the first window, which would otherwise pay for them alone
        windows = []
        for i in range(2 * args.rounds + 1):  # quiet, flood, quiet, ..., quiet: each flood between two quiet
            batch = reqs[(i + 1) * per_window:(i + 2) * per_window]
            windows.append(await window(server, agent, batch, flood_proc if i % 2 else None, args))
            print(f"  {'flood' if i % 2 else 'quiet'}: {json.dumps(windows[-1])}", flush=True)
        return summarize(windows, server)
    finally:
        if flood_proc is not None:
            flood_proc.stop()
        await agent.disconnect()
        server.stop()
        await database.drop()


async def window(server: ServerProcess, agent: Agent, reqs: list, flood_proc: Flood | None, args) -> dict:
    """Ingest at full speed for --seconds, with the flood running or paused."""
    if flood_proc is not None:
        flood_proc.running.set()
        await asyncio.sleep(args.flood_lead)  # the flood in its stride before the clock starts
        before = flood_proc.snapshot()
    meter = CpuMeter(server)
    result = await phase_max(server, agent, reqs, args)
    meter.read(result)
    if flood_proc is not None:
        answers = [b - a for a, b in zip(before, flood_proc.snapshot())]
        flood_proc.running.clear()
        seconds = max(1e-9, result["send_window_s"])
        result["flood"] = {"answers": dict(zip(ANSWERS, answers)), "attempts_per_s": round(sum(answers) / seconds, 1),
                           "hashes_per_s": round(answers[0] / seconds, 1)}
    return result


def summarize(windows: list[dict], server: ServerProcess) -> dict:
    """Medians of the quiet and of the flood windows, and every window as measured."""
    quiet, flooded = windows[0::2], windows[1::2]

    def median(rows, *path):
        values = []
        for row in rows:
            for key in path:
                row = row[key]
            values.append(row)
        return round(statistics.median(values), 1)

    answers = {k: sum(w["flood"]["answers"][k] for w in flooded) for k in ANSWERS}
    rate = [w["stored_msgs_per_s"] for w in windows]
    ratios = [rate[i] / max(1e-9, (rate[i - 1] + rate[i + 1]) / 2) for i in range(1, len(rate) - 1, 2)]
    return {
        "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
        "quiet_msgs_per_s": median(quiet, "stored_msgs_per_s"), "flood_msgs_per_s": median(flooded, "stored_msgs_per_s"),
        "quiet_p99_ms": median(quiet, "latency_ms", "p99"), "flood_p99_ms": median(flooded, "latency_ms", "p99"),
        "quiet_server_cpu_pct": median(quiet, "server_cpu_pct"), "flood_server_cpu_pct": median(flooded, "server_cpu_pct"),
        "attempts_per_s": median(flooded, "flood", "attempts_per_s"), "hashes_per_s": median(flooded, "flood", "hashes_per_s"),
        "answers": answers, "errors": sum(sum(w["errors"].values()) for w in windows),
        "server_log_lines_warning": server.log_warnings(), "windows": windows,
    }


# ---------------------------------------------------------------- report

def report(results: dict, info: dict, args) -> str:
    """Every database and flood side by side, and the verdict."""
    columns = [(kind, flood) for kind in results for flood in results[kind]]
    header = ("",) + tuple(f"{kind}, {flood}" for kind, flood in columns)

    def row(label: str, value) -> tuple[str, ...]:
        return (label,) + tuple(value(results[k][f]) for k, f in columns)

    rows = [header,
            row("quiet: stored msgs/s", lambda r: str(r["quiet_msgs_per_s"])),
            row("flood: stored msgs/s", lambda r: str(r["flood_msgs_per_s"])),
            row("flood / quiet (median of pairs)", lambda r: f"{ratio(r):.0%}"),
            row("each flood / its neighbours", lambda r: " ".join(f"{x:.0%}" for x in r["ratios"])),
            row("quiet: latency p99 ms", lambda r: str(r["quiet_p99_ms"])),
            row("flood: latency p99 ms", lambda r: str(r["flood_p99_ms"])),
            row("flood: login attempts/s", lambda r: str(r["attempts_per_s"])),
            row("flood: hashes/s (401s)", lambda r: str(r["hashes_per_s"])),
            row("flood: answers", lambda r: " ".join(f"{k}:{v}" for k, v in r["answers"].items() if v)),
            row("ingest errors", lambda r: str(r["errors"])),
            row("server CPU % quiet/flood", lambda r: f"{r['quiet_server_cpu_pct']}/{r['flood_server_cpu_pct']}")]
    verdict = [f"{kind}, {flood}: the flood keeps {ratio(results[kind][flood]):.0%} of the quiet rate; "
               f"target >= {TARGET_RATIO:.0%}: {'MET' if ratio(results[kind][flood]) >= TARGET_RATIO else 'NOT MET'}"
               for kind, flood in columns]
    head = (machine_line(info) + f"  load average at the end: {os.getloadavg()[0]:.1f}\n"
            f"{args.rounds} flood windows, each between two quiet ones, {args.seconds:g}s of ingest each, concurrency "
            f"{args.concurrency}, {args.senders} customer numbers; flood: {args.workers} workers, pause on 429/503 "
            f"<= {args.flood_max_pause:g}s; a fresh server and database per column\n")
    return head + "\n" + text_table(rows) + "\n\n" + "\n".join(verdict)


def ratio(result: dict) -> float:
    """The median over flood windows of its rate over the mean of the quiet windows either side."""
    return result["ratio"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", action="append", dest="database_urls",
                        help="'sqlite' (a fresh file) or a PostgreSQL server's URL; repeat for several")
    parser.add_argument("--seconds", type=float, default=3.0, help="ingest time per window")
    parser.add_argument("--rounds", type=int, default=4, help="flood windows (each between two quiet ones)")
    parser.add_argument("--flood", choices=("both",) + FLOODS, default="both")
    parser.add_argument("--concurrency", type=int, default=64, help="webhook senders")
    parser.add_argument("--senders", type=int, default=200, help="distinct customer numbers")
    parser.add_argument("--workers", type=int, default=50, help="parallel wrong logins")
    parser.add_argument("--flood-max-pause", type=float, default=1.0, help="the longest Retry-After a flood worker honours")
    parser.add_argument("--flood-lead", type=float, default=1.0, help="seconds of flood before a window's ingest starts")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=15.0)
    parser.add_argument("--keep", action="store_true", help="keep each server's temp dir (config, db, log)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not 0 < args.seconds <= 60 or not 1 <= args.rounds <= 10 or args.concurrency < 1 or not 1 <= args.workers <= 250:
        parser.error("need 0 < --seconds <= 60, 1 <= --rounds <= 10, --concurrency >= 1, 1 <= --workers <= 250")
    args.database_urls = args.database_urls or ["sqlite"]
    loop_name = use_uvloop()
    info = machine()
    senders = customer_numbers(args.senders, exclude=(ALICE_NUMBER,))
    args.senders = len(senders)
    print(f"{machine_line(info)}  (client loop: {loop_name})")
    results: dict[str, dict] = {}
    for url in args.database_urls:
        kind = FreshDatabase(url).kind
        results[kind] = {}
        for flood_kind in (FLOODS if args.flood == "both" else (args.flood,)):
            results[kind][flood_kind] = asyncio.run(run_floods(url, flood_kind, args, senders))
    summary = report(results, info, args)
    print("\n" + summary)
    write_results(args.output, {
        "benchmark": "login_flood", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": info,
        "client_loop": loop_name, "target_ratio": TARGET_RATIO, "params": params_of(args), "results": results,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
