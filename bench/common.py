"""What the benchmarks share: the machine line, percentiles, CPU readings, `didchat run` as a
separate process (fresh temp dir, SQLite file, waits for /healthz), the lines every config starts
with, and the agent's Socket.IO client. Several nodes on one database: nodes.py.

Everything listens and connects on 127.0.0.1 only; every wait is bounded in time.
"""
from __future__ import annotations

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
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import socketio  # noqa: E402

from gateway.numbers import InvalidNumber, normalize_number  # noqa: E402

DIDCHAT = Path(sys.executable).parent / "didchat"  # the venv's entry point; PYTHONPATH=REPO picks the code
RESULTS_DIR = REPO / "bench" / "results"
PASSWORD = "bench-password-123"
SECRET_KEY = "b" * 40


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


def machine_line(info: dict) -> str:
    return f"machine: nproc={info['nproc']}  cpu={info['cpu_model']}  python={info['python']}"


def code_line() -> str:
    return f"code: {code_version()}"


def code_version() -> str:
    """The commit of the code benchmarked (+dirty if chat/ or gateway/ differ from it)."""
    stamp = REPO / "COMMIT"  # written next to a `git archive` snapshot
    if stamp.exists():
        return stamp.read_text().strip() + " (snapshot)"
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "chat", "gateway"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def use_uvloop() -> str:
    """Install uvloop's policy for this (benchmark) process if available; the loop's name."""
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return "uvloop"
    except ImportError:
        return "asyncio"


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


def latency_summary(values: list[float], points: tuple = (50, 90, 99)) -> dict:
    """{"p50": ms, ..., "max": ms} of durations in seconds."""
    out = {f"p{p:g}": ms(percentile(values, p)) for p in points}
    out["max"] = ms(max(values) if values else None)
    return out


def customer_numbers(count: int, exclude: tuple[str, ...] = ()) -> list[str]:
    """Up to `count` valid +1212555xxxx numbers (none of those in `exclude`)."""
    out: list[str] = []
    for i in range(min(count, 8999)):
        raw = f"+1212555{1000 + i:04d}"
        try:
            number = normalize_number(raw)
        except InvalidNumber:
            continue
        if number not in exclude:
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


class CpuMeter:
    """Server and benchmark-process CPU % over a wall-clock interval."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self.server0, self.self0, self.wall0 = server.cpu_seconds(), self_cpu_seconds(), time.perf_counter()

    def read(self, into: dict) -> dict:
        wall = max(1e-9, time.perf_counter() - self.wall0)
        server1, self1 = self.server.cpu_seconds(), self_cpu_seconds()
        if self.server0 is not None and server1 is not None:
            into["server_cpu_pct"] = round(100 * (server1 - self.server0) / wall, 1)
        into["bench_process_cpu_pct"] = round(100 * (self1 - self.self0) / wall, 1)
        return into


class Http1:
    """A lean HTTP/1.1 keep-alive client for load: one connection, one request at a time, each written as one
    buffer and its answer read by Content-Length. It costs this process a fraction of aiohttp's client, so a
    benchmark on a machine the node shares measures the node more than the load generator."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, url: str, body: bytes, headers: dict, timeout: float) -> int:
        """POST `body` to `url` (on this client's host) and return the answer's status; the connection is kept."""
        async with asyncio.timeout(timeout):
            try:
                return await self._post(url, body, headers)
            except BaseException:
                self.close()  # an answer half read: the next request takes a new connection
                raise

    async def _post(self, url: str, body: bytes, headers: dict) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        target = url.split("/", 3)[3] if url.count("/") >= 3 else ""
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST /{target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}"
                          f"Content-Length: {len(body)}\r\n\r\n".encode("utf-8", "surrogateescape") + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status, lower = int(answer[9:12]), answer.lower()
        at = lower.find(b"\r\ncontent-length:")
        size = int(lower[at + 17:lower.index(b"\r\n", at + 2)]) if at >= 0 else 0
        if size:
            await self.reader.readexactly(size)
        if b"\r\nconnection: close" in lower:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pace:
    """An open-loop schedule: item i is due at t0 + i/rate, whatever became of the earlier ones
    (so a slow answer delays nothing after it: no coordinated omission)."""

    def __init__(self, rate: float, lead: float = 0.05):
        self.rate = rate
        self.t0 = time.perf_counter() + lead

    async def wait(self, i: int) -> float:
        """Sleep until item i is due; its planned time."""
        planned = self.t0 + i / self.rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        return planned


def write_results(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def params_of(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def phase_rows(header: tuple[str, str, str], spec: list[tuple[str, tuple[str, ...]]],
               a: dict, b: dict) -> list[tuple[str, str, str]]:
    """The summary rows of a two-phase benchmark: each label with its value in phase a and b."""
    def value(d, path):
        for p in path:
            d = d.get(p) if isinstance(d, dict) else None
        return "-" if d is None else (json.dumps(d) if isinstance(d, dict) else str(d))

    return [header] + [(label, value(a, path), value(b, path)) for label, path in spec]


def text_table(rows: list[tuple[str, ...]]) -> str:
    """Rows of strings as aligned columns; the first row is the header, underlined."""
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(max(len(r) for r in rows))]
    lines = ["  ".join((f"{c:<{widths[i]}}" if i == 0 else f"{c:>{widths[i]}}") for i, c in enumerate(r)).rstrip()
             for r in rows]
    lines.insert(1, "-" * (sum(widths) + 2 * (len(widths) - 1)))
    return "\n".join(lines)


# ---------------------------------------------------------------- the server process

class ServerProcess:
    """`didchat run --config FILE --port PORT` in its own process, on a fresh temp dir and SQLite file.

    start(config_text) writes the YAML given (it may use .port, .dir, .db_url; see head_config) and
    waits for GET /healthz; stop() sends SIGINT (clean aiohttp shutdown), kills after 10 s, removes
    the dir. A node of a cluster (nodes.py) gets the cluster's `folder`: its config is already
    there (start(None)), its log is `<name>.log`, and the folder is the cluster's to remove."""

    redis_url: str | None = None  # one process on its own: no Redis (nodes.Cluster sets both)
    redis_prefix: str | None = None

    def __init__(self, label: str, keep: bool = False, folder: Path | None = None, name: str = "server"):
        self.owns_dir = folder is None
        self.dir = folder or Path(tempfile.mkdtemp(prefix=f"didchat-bench-{label}-"))
        self.keep = keep
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = f"sqlite+aiosqlite:///{self.dir}/didchat.db"
        self.config_path = self.dir / "didchat.yaml"
        self.log_path = self.dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, config_text: str | None, timeout: float = 30.0) -> None:
        if config_text is not None:
            self.config_path.write_text(config_text)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(DIDCHAT), "run", "--config", str(self.config_path), "--port", str(self.port)],
                                     cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=didchat_env())
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

    def log_warnings(self) -> int:
        return sum(1 for line in self.log_tail(1_000_000).splitlines()
                   if "warn" in line.lower() or "error" in line.lower())

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
        if self.owns_dir and not self.keep:
            remove_dir(self.dir)


def didchat_env() -> dict:
    """The environment of a `didchat` process: the code next to this bench/, the config's database
    and Redis only (the same as the editable install, or a snapshot: see README)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    env.pop("DIDCHAT_DATABASE_URL", None)
    env.pop("DIDCHAT_REDIS_URL", None)
    return env


def remove_dir(path: Path) -> None:
    """Remove a benchmark's temp dir (files one level deep), quietly."""
    for item in sorted(path.glob("*"), reverse=True):
        if item.is_file():
            item.unlink()
    try:
        path.rmdir()
    except OSError:
        pass


def head_config(site) -> str:
    """The lines every benchmark's config starts with, for a ServerProcess or a nodes.Cluster:
    where it listens, its folder and database, the secret key, and Redis when it has several nodes."""
    text = (f'public_url: {site.url}\nhost: 127.0.0.1\nport: {site.port}\ndata_dir: "{site.dir}"\n'
            f'database_url: "{site.db_url}"\nsecret_key: "{SECRET_KEY}"\n')
    if site.redis_url:
        text += f'redis_url: "{site.redis_url}"\ncluster: {{redis_prefix: "{site.redis_prefix}"}}\n'
    return text


async def hold(server: ServerProcess, seconds: float) -> None:
    """Pause so that a profiler can be attached to the server."""
    if seconds:
        print(f"  server pid {server.pid}; starting in {seconds:g}s (attach a profiler now)", flush=True)
        await asyncio.sleep(seconds)


# ---------------------------------------------------------------- the agent

async def login(url: str, username: str, password: str = PASSWORD) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/login", json={"username": username, "password": password}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"login failed: {r.status} {body}")
    return body["token"]


@dataclass
class Agent:
    """An agent's python-socketio client on /agent (websocket transport).

    received: receive time of each pushed `message` whose text is `<prefix><n>`, by n;
    conversation_of: the conversation id of each customer number that wrote;
    statuses: (receive time, payload) of each `status` push."""

    url: str
    username: str = "alice"
    password: str = PASSWORD
    prefix: str = "bench "
    received: dict[int, float] = field(default_factory=dict)
    conversation_of: dict[str, int] = field(default_factory=dict)
    statuses: list[tuple[float, dict]] = field(default_factory=list)
    conversations: int = 0
    other: int = 0
    bursts: int = 0  # `messages` events (several messages in one push)

    async def connect(self) -> None:
        token = await login(self.url, self.username, self.password)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("message", self._message, namespace="/agent")
        self.sio.on("messages", self._messages, namespace="/agent")
        self.sio.on("statuses", self._statuses, namespace="/agent")
        self.sio.on("conversation", self._conversation, namespace="/agent")
        self.sio.on("status", self._status, namespace="/agent")
        await self.sio.connect(self.url, namespaces=["/agent"], auth={"token": token},
                               transports=["websocket"], wait_timeout=10)
        # a round trip through the namespace: the server has registered the agent's presence
        ack = await self.call("presence", {"state": "ready"})
        if not ack.get("ok"):
            raise RuntimeError(f"presence failed: {ack}")

    async def call(self, event: str, data: dict, timeout: float = 10) -> dict:
        return await self.sio.call(event, data, namespace="/agent", timeout=timeout)

    async def _statuses(self, data=None) -> None:
        for item in data or []:
            await self._status(item)

    async def _messages(self, data=None) -> None:
        self.bursts += 1
        for item in data or []:
            await self._message(item)

    async def _message(self, data=None) -> None:
        now = time.perf_counter()
        data = data or {}
        text = data.get("text") or ""
        if data.get("direction") == "in" and data.get("from") and data.get("conversation_id") is not None:
            self.conversation_of.setdefault(data["from"], data["conversation_id"])
        if text.startswith(self.prefix):
            try:
                self.received.setdefault(int(text[len(self.prefix):]), now)
                return
            except ValueError:
                pass
        self.other += 1

    async def _conversation(self, data=None) -> None:
        self.conversations += 1

    async def _status(self, data=None) -> None:
        self.statuses.append((time.perf_counter(), data or {}))

    async def wait_for(self, expected: set[int], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and not expected.issubset(self.received.keys()):
            await asyncio.sleep(0.02)

    async def disconnect(self) -> None:
        try:
            if self.sio.connected:
                await asyncio.wait_for(self.sio.disconnect(), 5)
        except Exception:  # noqa: BLE001 - tearing down anyway
            pass


class TimedList(list):
    """A list that also keeps when each item was appended (perf_counter): what a fake peer
    records (TestSmsc.submits, FakeTwilioApi.requests), with arrival times."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def append(self, item) -> None:
        self.times.append(time.perf_counter())
        super().append(item)


def arrivals(records: TimedList, start: int, text_of, replies: range) -> tuple[dict[int, float], int]:
    """From records[start:]: when each `reply <n>` (n in `replies`) first arrived, and how many
    arrived in all (a difference is a reply sent twice). text_of(record) is its text, or None."""
    when: dict[int, float] = {}
    count = 0
    for t, record in zip(records.times[start:], records[start:]):
        text = text_of(record) or ""
        if text.startswith("reply ") and text[6:].isdigit() and int(text[6:]) in replies:
            count += 1
            when.setdefault(int(text[6:]), t)
    return when, count


async def until_arrived(records: TimedList, start: int, text_of, replies: set[int], timeout: float) -> None:
    """Wait until every reply in `replies` is in records[start:] (bounded by `timeout`)."""
    wanted = {f"reply {n}" for n in replies}
    seen: set[str] = set()
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        seen.update(text_of(r) for r in records[start:])
        start = len(records)
        if wanted <= seen:
            return
        await asyncio.sleep(0.02)


def conversation_ids(agents: list[Agent]) -> dict[str, int]:
    """Conversation ids by customer number, from whichever of the agent's clients was pushed them."""
    out: dict[str, int] = {}
    for agent in agents:
        out.update(agent.conversation_of)
    return out


async def conversations_of(agents: list[Agent], customers: list[str], timeout: float) -> list[int]:
    """The conversation id of each customer (E.164), once any of the agent's clients was pushed it."""
    deadline = time.perf_counter() + timeout
    while not set(customers) <= conversation_ids(agents).keys() and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    known = conversation_ids(agents)
    if missing := set(customers) - known.keys():
        raise RuntimeError(f"{len(missing)} of {len(set(customers))} conversations were not pushed to the agent")
    return [known[c] for c in customers]


@dataclass
class Replies:
    """What became of an agent's `send`s: start and ack times by reply number, errors by name."""

    t0: float = 0.0
    started: dict[int, float] = field(default_factory=dict)
    acked: dict[int, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1


async def send_replies(agents: list[Agent], conversations: list[int], replies: range, run_id: str,
                       concurrency: int, rate: float, timeout: float) -> Replies:
    """Reply n (`reply <n>`) in conversation n mod C from the client n mod N, at most `concurrency`
    unanswered; at `rate` (open loop) or as fast as they are answered (rate 0)."""
    out, slots = Replies(), asyncio.Semaphore(concurrency)
    pace = Pace(rate) if rate else None

    async def one(n: int) -> None:
        try:
            out.started[n] = time.perf_counter()
            ack = await agents[n % len(agents)].call("send", {
                "conversation_id": conversations[n % len(conversations)], "text": f"reply {n}",
                "client_id": f"{run_id}-{n}"}, timeout=timeout)
            if ack.get("ok"):
                out.acked[n] = time.perf_counter()
            else:
                out.error(str(ack.get("error")))
        except Exception as err:  # noqa: BLE001 - counted
            out.error(type(err).__name__)
        finally:
            slots.release()

    tasks = []
    out.t0 = pace.t0 if pace else time.perf_counter()
    for i, n in enumerate(replies):  # bounded: len(replies)
        if pace:
            await pace.wait(i)
        await slots.acquire()
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.wait(tasks, timeout=timeout + 5)
    return out


# ---------------------------------------------------------------- SMPP: didchat bound to a TestSmsc

SMPP_NUMBER = "+12125550103"  # alice's number on the SMPP connector
SMPP_DEST = SMPP_NUMBER.lstrip("+")  # as the SMSC addresses it (TON 1)


def smpp_config_text(server, smsc_port: int, window: int, outbox_concurrency: int = 0,
                     extra: str = "") -> str:
    """head_config(server), one SMPP connector to a TestSmsc on 127.0.0.1:smsc_port with
    `window`, alice owning SMPP_NUMBER, presence grace 0, a fast outbox (0: the server's default
    concurrency)."""
    concurrency = f", concurrency: {outbox_concurrency}" if outbox_concurrency else ""
    return head_config(server) + f"""\
presence_grace_seconds: 0
outbox: {{backoff_seconds: 0.05, backoff_max_seconds: 0.2, max_attempts: 4{concurrency}}}
users:
  - {{name: alice, display_name: Alice, password: {PASSWORD}}}
access_numbers:
  - {{number: "{SMPP_NUMBER}", user: alice}}
connectors:
  - type: smpp
    name: smsc
    host: 127.0.0.1
    port: {smsc_port}
    system_id: didchat
    password: secret
    window: {window}
    enquire_link_seconds: 30
    response_timeout: 10
    reconnect_min: 0.1
    reconnect_max: 0.5
    throttle_pause: 0.2
    submit_retries: 50
    submit_id_base: hex
    receipt_id_base: hex
    numbers: ["{SMPP_NUMBER}"]
""" + extra


def smpp_customers(count: int) -> list[str]:
    """`count` customer numbers as the SMSC writes them (digits, TON 1), not alice's."""
    return [n.lstrip("+") for n in customer_numbers(count, exclude=(SMPP_NUMBER,))]
