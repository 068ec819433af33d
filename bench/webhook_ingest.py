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
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import socketio  # noqa: E402

from chat.cli import signed_sms  # noqa: E402
from chat.config import load_config  # noqa: E402
from gateway.numbers import InvalidNumber, normalize_number  # noqa: E402

ALICE_NUMBER = "+12125550101"
PASSWORD = "bench-password-123"
SECRET_KEY = "b" * 40
RESULTS = REPO / "bench" / "results" / "webhook_ingest.json"
DIDCHAT = REPO / ".venv" / "bin" / "didchat"
TARGETS = {"sustained_msgs_per_s": 1500, "p99_ms_at_500": 50}


# ---------------------------------------------------------------- machine and helpers

def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"nproc": usable, "cpu_count": os.cpu_count(), "cpu_model": model,
            "python": platform.python_version(), "platform": platform.platform()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def customer_numbers(count: int) -> list[str]:
    """Up to `count` valid +1212555xxxx numbers (none of them alice's)."""
    out: list[str] = []
    for i in range(min(count, 8999)):
        raw = f"+1212555{1000 + i:04d}"
        try:
            number = normalize_number(raw)
        except InvalidNumber:
            continue
        if number != ALICE_NUMBER:
            out.append(number)
    if not out:
        raise SystemExit("no valid customer numbers")
    return out


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (None if unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the server process

class ServerProcess:
    """`didchat run --config FILE` in its own process, on a fresh temp dir and SQLite file."""

    def __init__(self, label: str, keep: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix=f"didchat-bench-{label}-"))
        self.keep = keep
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = self.dir / "didchat.yaml"
        self.log_path = self.dir / "server.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def write_config(self) -> None:
        unused = free_port()  # outbound is not exercised; nothing listens there
        self.config_path.write_text(textwrap.dedent(f"""\
            public_url: http://127.0.0.1:{self.port}
            host: 127.0.0.1
            port: {self.port}
            data_dir: "{self.dir}"
            database_url: "sqlite+aiosqlite:///{self.dir}/didchat.db"
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
            """))

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("DIDCHAT_DATABASE_URL", None)  # the config's SQLite file, always
        self.proc = subprocess.Popen([str(DIDCHAT), "run", "--config", str(self.config_path)],
                                     cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"didchat exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"didchat did not answer /healthz within {timeout}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.proc else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # aiohttp's run_app shuts down cleanly on SIGINT
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        if not self.keep:
            for path in sorted(self.dir.glob("*"), reverse=True):
                if path.is_file():
                    path.unlink()
            try:
                self.dir.rmdir()
            except OSError:
                pass


# ---------------------------------------------------------------- requests and the agent

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


@dataclass
class Agent:
    """alice's Socket.IO client: the receive time of each pushed `message`, by request number."""

    url: str
    received: dict[int, float] = field(default_factory=dict)
    conversations: int = 0
    other: int = 0

    async def connect(self) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}/api/login", json={"username": "alice", "password": PASSWORD}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"login failed: {r.status} {body}")
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("message", self._message, namespace="/agent")
        self.sio.on("conversation", self._conversation, namespace="/agent")
        await self.sio.connect(self.url, namespaces=["/agent"], auth={"token": body["token"]},
                               transports=["websocket"], wait_timeout=10)
        # a round trip through the namespace: the server has registered alice's presence
        ack = await self.sio.call("presence", {"state": "ready"}, namespace="/agent", timeout=10)
        if not ack.get("ok"):
            raise RuntimeError(f"presence failed: {ack}")

    async def _message(self, data=None) -> None:
        now = time.perf_counter()
        text = (data or {}).get("text") or ""
        if text.startswith("bench "):
            try:
                self.received.setdefault(int(text[6:]), now)
                return
            except ValueError:
                pass
        self.other += 1

    async def _conversation(self, data=None) -> None:
        self.conversations += 1

    async def wait_for(self, expected: set[int], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and not expected.issubset(self.received.keys()):
            await asyncio.sleep(0.02)

    async def disconnect(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def send(http: aiohttp.ClientSession, req: Request, timeout: float) -> None:
    req.start = time.perf_counter()
    try:
        async with http.post(req.url, data=req.body, headers=req.headers,
                             timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
            await answer.read()
            req.status = answer.status
            if answer.status != 200:
                req.error = f"HTTP {answer.status}"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
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
    server.start()
    agent = Agent(server.url)
    try:
        count = args.max_messages if name == "max" else int(args.rate * args.seconds)
        reqs = build_requests(server, count, senders, uuid.uuid4().hex[:12])
        await agent.connect()
        if args.hold:
            print(f"  server pid {server.proc.pid}; starting in {args.hold}s (attach a profiler now)", flush=True)
            await asyncio.sleep(args.hold)
        cpu_server0, cpu_self0, wall0 = server.cpu_seconds(), self_cpu_seconds(), time.perf_counter()
        result = await (phase_max if name == "max" else phase_rate)(server, agent, reqs, args)
        wall = time.perf_counter() - wall0
        cpu_server1, cpu_self1 = server.cpu_seconds(), self_cpu_seconds()
        if cpu_server0 is not None and cpu_server1 is not None:
            result["server_cpu_pct"] = round(100 * (cpu_server1 - cpu_server0) / wall, 1)
        result["bench_process_cpu_pct"] = round(100 * (cpu_self1 - cpu_self0) / wall, 1)
        result["server_log_warnings"] = sum(
            1 for line in server.log_tail(100000).splitlines() if "warn" in line.lower() or "error" in line.lower())
        if args.concurrency:
            result["concurrency"] = args.concurrency
        return result
    finally:
        try:
            await asyncio.wait_for(agent.disconnect(), 5)
        except Exception:  # noqa: BLE001 - tearing down anyway
            pass
        server.stop()


# ---------------------------------------------------------------- report

def table(results: dict, info: dict, args) -> str:
    rows = [("", "max throughput", f"fixed {args.rate:g} msg/s")]
    a, b = results.get("max", {}), results.get("rate", {})

    def g(d, *path):
        for p in path:
            d = d.get(p) if isinstance(d, dict) else None
        return "-" if d is None else (json.dumps(d) if isinstance(d, dict) else str(d))

    for label, path in [
        ("requests sent", ("sent",)), ("HTTP 200", ("http_200",)), ("errors", ("errors",)),
        ("stored msgs/s (200s/s)", ("stored_msgs_per_s",)), ("delivered msgs/s (pushes/s)", ("delivered_msgs_per_s",)),
        ("missing pushes", ("missing_pushes",)),
        ("latency p50 ms", ("latency_ms", "p50")), ("latency p90 ms", ("latency_ms", "p90")),
        ("latency p99 ms", ("latency_ms", "p99")), ("latency max ms", ("latency_ms", "max")),
        ("HTTP answer p50 ms", ("http_ms", "p50")), ("HTTP answer p99 ms", ("http_ms", "p99")),
        ("server CPU %", ("server_cpu_pct",)), ("bench process CPU %", ("bench_process_cpu_pct",)),
    ]:
        rows.append((label, g(a, *path), g(b, *path)))
    if b:
        rows.append(("p99 from planned start ms", "", g(b, "latency_from_planned_ms", "p99")))
        rows.append(("starts waiting for a slot", "", g(b, "starts_waiting_for_a_slot")))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{r[0]:<{w0}}  {r[1]:>{w1}}  {r[2]}" for r in rows]
    lines.insert(1, "-" * (w0 + w1 + 24))
    head = (f"machine: nproc={info['nproc']}  cpu={info['cpu_model']}  python={info['python']}\n"
            f"phases: {args.seconds:g}s each, concurrency {args.concurrency}, "
            f"{args.senders} customer numbers, fresh SQLite per phase\n")
    verdict = []
    if a:
        verdict.append(f"target >= {TARGETS['sustained_msgs_per_s']} msg/s: "
                       f"{'MET' if a['stored_msgs_per_s'] >= TARGETS['sustained_msgs_per_s'] and a['delivered_msgs_per_s'] >= TARGETS['sustained_msgs_per_s'] else 'NOT MET'}")
    if b:
        p99 = b["latency_ms"]["p99"]
        verdict.append(f"target p99 <= {TARGETS['p99_ms_at_500']} ms at {args.rate:g} msg/s: "
                       f"{'MET' if p99 is not None and p99 <= TARGETS['p99_ms_at_500'] and not b['missing_pushes'] and not b['errors'] else 'NOT MET'}")
    return head + "\n" + "\n".join(lines) + "\n\n" + "\n".join(verdict)


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

    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    info = machine()
    senders = customer_numbers(args.senders)
    args.senders = len(senders)
    print(f"machine: nproc={info['nproc']} cpu={info['cpu_model']} python={info['python']} (client loop: {loop_name})")
    results: dict = {}
    for name in (["max", "rate"] if args.phase == "both" else [args.phase]):
        results[name] = asyncio.run(run_phase(name, args, senders))
        print(f"  {name}: {json.dumps(results[name])}", flush=True)

    summary = table(results, info, args)
    print("\n" + summary)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "webhook_ingest", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "client_loop": loop_name, "targets": TARGETS,
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
    }, indent=2) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
