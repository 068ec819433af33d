"""Webhook ingest benchmark: signed Twilio webhooks in, Socket.IO `message` pushes out.

Starts `didchat run` as a separate process (fresh SQLite database per phase), logs in as the
agent alice, connects one python-socketio client (websocket transport) and measures:

  (a) max throughput: --concurrency closed-loop senders blasting for --seconds;
      stored msgs/s (HTTP 200s per second), delivered msgs/s (pushes to the agent per second),
      webhook->push latency percentiles;
  (b) fixed rate: an open-loop schedule of --rate msgs/s for --seconds (requests start at
      their planned times, without waiting for earlier answers, at most --concurrency in flight);
      achieved rate, webhook->push latency p50/p99/max, errors and missing pushes.

Latency = time the agent's client received the `message` push - time the webhook request
started (both on this process's monotonic clock). Everything runs on 127.0.0.1; every loop is
bounded in count and in time, and the server is killed at the end.

    .venv/bin/python bench/webhook_ingest.py [--rate 500 --seconds 10 --concurrency 64]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
from common import (  # noqa: E402
    PASSWORD,
    RESULTS_DIR,
    SECRET_KEY,
    Agent,
    CpuMeter,
    ServerProcess,
    customer_numbers,
    free_port,
    hold,
    machine,
    machine_line,
    ms,
    params_of,
    percentile,
    phase_rows,
    text_table,
    use_uvloop,
    write_results,
)

from chat.cli import signed_sms  # noqa: E402
from chat.config import load_config  # noqa: E402

ALICE_NUMBER = "+12125550101"
RESULTS = RESULTS_DIR / "webhook_ingest.json"
TARGETS = {"sustained_msgs_per_s": 1500, "p99_ms_at_500": 50}


def config_text(server: ServerProcess) -> str:
    """SQLite in the server's dir, one Twilio connector (outbound unused), alice owning ALICE_NUMBER."""
    unused = free_port()  # outbound is not exercised; nothing listens there
    return textwrap.dedent(f"""\
        public_url: {server.url}
        host: 127.0.0.1
        port: {server.port}
        data_dir: "{server.dir}"
        database_url: "{server.db_url}"
        secret_key: "{SECRET_KEY}"
        presence_grace_seconds: 0
        users:
          - {{name: alice, display_name: Alice, password: {PASSWORD}}}
        access_numbers:
          - {{number: "{ALICE_NUMBER}", user: alice}}
        connectors:
          - type: twilio
            name: tw
            account_sid: AC{'0' * 32}
            auth_token: {'t' * 32}
            api_base: http://127.0.0.1:{unused}
            numbers: ["{ALICE_NUMBER}"]
        """)


# ---------------------------------------------------------------- requests

@dataclass
class Request:
    n: int
    url: str
    body: bytes
    headers: dict
    planned: float | None = None  # fixed rate: when it should have started
    start: float | None = None
    end: float | None = None
    status: int | None = None
    error: str | None = None


def build_requests(server: ServerProcess, count: int, senders: list[str], run_id: str) -> list[Request]:
    """Signed webhooks, built before the clock starts; the text carries the request's number."""
    config = load_config(server.config_path)
    conn = config.connector_of(ALICE_NUMBER)
    out = []
    for n in range(count):
        url, body, headers = signed_sms(config, conn, senders[n % len(senders)], ALICE_NUMBER,
                                        f"bench {n}", f"SM{run_id}{n:012d}")
        out.append(Request(n, url, body, headers))
    return out


async def send(http: aiohttp.ClientSession, req: Request, timeout: float) -> None:
    req.start = time.perf_counter()
    try:
        async with http.post(req.url, data=req.body, headers=req.headers,
                             timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
            await answer.read()
            req.status = answer.status
            if answer.status != 200:
                req.error = f"HTTP {answer.status}"
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        req.error = type(err).__name__
    req.end = time.perf_counter()


# ---------------------------------------------------------------- phases

async def phase_max(server: ServerProcess, agent: Agent, reqs: list[Request], args) -> dict:
    """Closed loop: `concurrency` workers send back to back until `seconds` have passed."""
    nxt = iter(reqs)
    t0 = time.perf_counter()
    deadline = t0 + args.seconds

    async def worker(http):
        for req in nxt:  # shared iterator: bounded by len(reqs)
            if time.perf_counter() >= deadline:
                break
            await send(http, req, args.request_timeout)

    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(worker(http) for _ in range(args.concurrency)))
    sent = [r for r in reqs if r.start is not None]
    if len(sent) == len(reqs):
        print(f"  warning: all {len(reqs)} prebuilt requests were used; raise --max-messages", file=sys.stderr)
    return await collect(server, agent, sent, t0, args)


async def phase_rate(server: ServerProcess, agent: Agent, reqs: list[Request], args) -> dict:
    """Open loop: request i starts at t0 + i/rate, at most `concurrency` in flight."""
    slots = asyncio.Semaphore(args.concurrency)
    tasks: set[asyncio.Task] = set()
    late = 0

    async def one(http, req):
        try:
            await send(http, req, args.request_timeout)
        finally:
            slots.release()

    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter() + 0.05
        for i, req in enumerate(reqs):  # bounded: rate * seconds requests
            req.planned = t0 + i / args.rate
            delay = req.planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if slots.locked():
                late += 1
            await slots.acquire()  # bounded concurrency: wait for a slot (counted as late)
            task = asyncio.create_task(one(http, req))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=args.request_timeout + 5)
    result = await collect(server, agent, reqs, t0, args)
    starts = [r.start - r.planned for r in reqs if r.start is not None]
    result["target_rate"] = args.rate
    result["starts_waiting_for_a_slot"] = late
    result["start_lag_ms"] = {"p50": ms(percentile(starts, 50)), "p99": ms(percentile(starts, 99)),
                              "max": ms(max(starts) if starts else None)}
    corrected = [agent.received[r.n] - r.planned for r in reqs if r.n in agent.received]
    result["latency_from_planned_ms"] = {"p50": ms(percentile(corrected, 50)), "p99": ms(percentile(corrected, 99)),
                                         "max": ms(max(corrected) if corrected else None)}
    return result


async def collect(server: ServerProcess, agent: Agent, sent: list[Request], t0: float, args) -> dict:
    ok = [r for r in sent if r.status == 200]
    last_answer = max((r.end for r in sent if r.end), default=t0)
    await agent.wait_for({r.n for r in ok}, args.drain_timeout)
    errors: dict[str, int] = {}
    for r in sent:
        if r.error:
            errors[r.error] = errors.get(r.error, 0) + 1
    pushed = [r for r in ok if r.n in agent.received]
    latencies = [agent.received[r.n] - r.start for r in pushed]
    http_times = [r.end - r.start for r in ok]
    last_push = max((agent.received[r.n] for r in pushed), default=t0)
    send_window = max(1e-9, last_answer - t0)
    return {
        "sent": len(sent),
        "http_200": len(ok),
        "errors": errors,
        "send_window_s": round(send_window, 3),
        "stored_msgs_per_s": round(len(ok) / send_window, 1),
        "pushed": len(pushed),
        "missing_pushes": len(ok) - len(pushed),
        "delivered_msgs_per_s": round(len(pushed) / max(1e-9, last_push - t0), 1),
        "conversation_pushes": agent.conversations,
        "latency_ms": {"p50": ms(percentile(latencies, 50)), "p90": ms(percentile(latencies, 90)),
                       "p99": ms(percentile(latencies, 99)), "max": ms(max(latencies) if latencies else None)},
        "http_ms": {"p50": ms(percentile(http_times, 50)), "p99": ms(percentile(http_times, 99))},
    }


async def run_phase(name: str, args, senders: list[str]) -> dict:
    server = ServerProcess(name, keep=args.keep)
    print(f"phase {name}: starting didchat on {server.url} ({server.dir})", flush=True)
    server.start(config_text(server))
    agent = Agent(server.url)
    try:
        count = args.max_messages if name == "max" else int(args.rate * args.seconds)
        reqs = build_requests(server, count, senders, uuid.uuid4().hex[:12])
        await agent.connect()
        await hold(server, args.hold)
        meter = CpuMeter(server)
        result = await (phase_max if name == "max" else phase_rate)(server, agent, reqs, args)
        meter.read(result)
        result["server_log_warnings"] = server.log_warnings()
        if args.concurrency:
            result["concurrency"] = args.concurrency
        return result
    finally:
        await agent.disconnect()
        server.stop()


# ---------------------------------------------------------------- report

def table(results: dict, info: dict, args) -> str:
    a, b = results.get("max", {}), results.get("rate", {})
    rows = phase_rows(("", "max throughput", f"fixed {args.rate:g} msg/s"), [
        ("requests sent", ("sent",)), ("HTTP 200", ("http_200",)), ("errors", ("errors",)),
        ("stored msgs/s (200s/s)", ("stored_msgs_per_s",)), ("delivered msgs/s (pushes/s)", ("delivered_msgs_per_s",)),
        ("missing pushes", ("missing_pushes",)),
        ("latency p50 ms", ("latency_ms", "p50")), ("latency p90 ms", ("latency_ms", "p90")),
        ("latency p99 ms", ("latency_ms", "p99")), ("latency max ms", ("latency_ms", "max")),
        ("HTTP answer p50 ms", ("http_ms", "p50")), ("HTTP answer p99 ms", ("http_ms", "p99")),
        ("server CPU %", ("server_cpu_pct",)), ("bench process CPU %", ("bench_process_cpu_pct",)),
    ], a, b)
    if b:
        rows += phase_rows(("", "", ""), [("p99 from planned start ms", ("latency_from_planned_ms", "p99")),
                                          ("starts waiting for a slot", ("starts_waiting_for_a_slot",))], {}, b)[1:]
    head = (machine_line(info) + "\n"
            f"phases: {args.seconds:g}s each, concurrency {args.concurrency}, "
            f"{args.senders} customer numbers, fresh SQLite per phase\n")
    verdict = []
    if a:
        verdict.append(f"target >= {TARGETS['sustained_msgs_per_s']} msg/s: "
                       f"{'MET' if min(a['stored_msgs_per_s'], a['delivered_msgs_per_s']) >= TARGETS['sustained_msgs_per_s'] else 'NOT MET'}")
    if b:
        p99 = b["latency_ms"]["p99"]
        met_p99 = p99 is not None and p99 <= TARGETS['p99_ms_at_500'] and not b['missing_pushes'] and not b['errors']
        verdict.append(f"target p99 <= {TARGETS['p99_ms_at_500']} ms at {args.rate:g} msg/s: "
                       f"{'MET' if met_p99 else 'NOT MET'}")
    return head + "\n" + text_table(rows) + "\n\n" + "\n".join(verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed-rate phase: msgs/s")
    parser.add_argument("--concurrency", type=int, default=64, help="senders / max requests in flight")
    parser.add_argument("--senders", type=int, default=200, help="distinct customer numbers (conversations)")
    parser.add_argument("--max-messages", type=int, default=0,
                        help="max phase: requests prebuilt (default: 6000 per second of phase)")
    parser.add_argument("--phase", choices=["both", "max", "rate"], default="both")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=15.0, help="wait for outstanding pushes")
    parser.add_argument("--hold", type=float, default=0.0, help="pause before each phase (to attach a profiler)")
    parser.add_argument("--keep", action="store_true", help="keep each phase's temp dir (config, db, log)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.seconds <= 0 or args.seconds > 600 or args.rate <= 0 or args.concurrency < 1:
        parser.error("need 0 < --seconds <= 600, --rate > 0, --concurrency >= 1")
    args.max_messages = args.max_messages or int(6000 * args.seconds)

    loop_name = use_uvloop()

    info = machine()
    senders = customer_numbers(args.senders, exclude=(ALICE_NUMBER,))
    args.senders = len(senders)
    print(f"{machine_line(info)}  (client loop: {loop_name})")
    results: dict = {}
    for name in (["max", "rate"] if args.phase == "both" else [args.phase]):
        results[name] = asyncio.run(run_phase(name, args, senders))
        print(f"  {name}: {json.dumps(results[name])}", flush=True)

    summary = table(results, info, args)
    print("\n" + summary)
    write_results(args.output, {
        "benchmark": "webhook_ingest", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "client_loop": loop_name, "targets": TARGETS, "params": params_of(args),
        "results": results,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
