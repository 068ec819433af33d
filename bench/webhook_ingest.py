"""Webhook ingest benchmark: signed Twilio webhooks in, Socket.IO `message` pushes out, end to end.

For each target (nodes.py: SQLite, PostgreSQL with one node, PostgreSQL with two nodes sharing
Redis; `didchat run` processes apart from this one) it logs in as the agent alice on node 0,
connects one python-socketio client (websocket transport), and posts --messages signed webhooks,
round robin over the nodes (so with two nodes half must cross to node 0 to reach alice):

  - as fast as it goes (default): --concurrency closed-loop senders; or
  - at a fixed --rate: an open-loop schedule (request i starts at t0 + i/rate without waiting for
    earlier answers, at most --concurrency in flight; starts that had to wait for a slot counted).

msg/s = stored messages per second (HTTP 200s, first start to last answer: didchat answers 200
only after the commit); delivered msg/s = pushes reaching alice per second; latency = the push
received by alice - the webhook request start (this process's clock), and with --rate also from
the planned start (no coordinated omission). Everything runs on 127.0.0.1; every loop is bounded
in count and in time.

With --providers, every SMS API is measured on the same node, one after the other in each round:
webhooks signed as each provider signs them (tests/fakes/*_api.py, the providers' documented formats),
each provider's connector owning its own number of alice's; the table gives each provider's msg/s and
its ratio to the generic JSON format's, round by round.

    .venv/bin/python bench/webhook_ingest.py [--messages 5000 --rate 500 --repeat 5 --nodes 2]
    .venv/bin/python bench/webhook_ingest.py --providers [--messages 2000 --repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
import nodes  # noqa: E402
from common import (  # noqa: E402
    PASSWORD,
    RESULTS_DIR,
    Agent,
    Http1,
    Pace,
    code_line,
    customer_numbers,
    free_port,
    head_config,
    machine,
    machine_line,
    ms,
    params_of,
    percentile,
    proc_cpu_seconds,
    use_uvloop,
    write_results,
)

from chat.cli import signed_sms  # noqa: E402
from chat.config import load_config  # noqa: E402

ALICE_NUMBER = "+12125550101"
# --providers: each SMS API's fake (the documented formats and signatures), and the number its connector owns
PROVIDER_NUMBERS = {"twilio": ALICE_NUMBER, "vonage-messages": "+12125550111", "vonage-sms": "+12125550112",
                    "telnyx": "+12125550113", "plivo": "+12125550114", "bandwidth": "+12125550115",
                    "generic": "+12125550116"}
ACCOUNT_SID, AUTH_TOKEN = "AC" + "0" * 32, "t" * 32
RESULTS = RESULTS_DIR / "webhook_ingest.json"
TARGETS = {"sustained_msgs_per_s": 1500, "p99_ms_at_500": 50}
WARM_UP = 10**9  # the numbers of the unmeasured webhooks, apart from the runs' 0, 1, ...


def provider_fakes() -> dict:
    """Each provider's fake (tests/fakes), by the name the table shows; `generic` is signed by didchat's CLI."""
    from tests.fakes.bandwidth_api import FakeBandwidthApi
    from tests.fakes.plivo_api import FakePlivoApi
    from tests.fakes.telnyx_api import FakeTelnyxApi
    from tests.fakes.vonage_api import FakeVonageApi
    return {"vonage-messages": FakeVonageApi("messages"), "vonage-sms": FakeVonageApi("sms"),
            "telnyx": FakeTelnyxApi(), "plivo": FakePlivoApi(), "bandwidth": FakeBandwidthApi()}


def provider_lines(fakes: dict) -> tuple[str, str]:
    """The extra connectors (one per provider) and alice's access numbers for them."""
    connectors = "".join(fake.connector_yaml(name.replace("-", ""), [PROVIDER_NUMBERS[name]]).rstrip("\n") + "\n"
                         for name, fake in fakes.items())
    connectors += (f'  - {{type: generic, name: generic, secret: "{"s" * 32}", send_url: "http://127.0.0.1:9/", '
                   f'numbers: ["{PROVIDER_NUMBERS["generic"]}"]}}\n')
    numbers = "".join(f'  - {{number: "{PROVIDER_NUMBERS[name]}", user: alice}}\n'
                      for name in PROVIDER_NUMBERS if name != "twilio")
    return connectors, numbers


def provider_requests(server, name: str, fake, count: int, senders: list[str], run_id: str,
                      first: int = 0) -> list[Request]:
    """Webhooks n = first .. first+count-1 as provider `name` posts them (its fake in tests/fakes) to its connector
    on node 0; the generic format's as `didchat simulate sms` signs them."""
    config = load_config(server.config_path)
    number, connector = PROVIDER_NUMBERS[name], name.replace("-", "")
    if name == "twilio":  # the connector every run has (config_text), its webhooks as the fake posts them
        from tests.fakes.twilio_api import FakeTwilioApi
        fake, connector = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN), "tw"
    out = []
    for n in range(first, first + count):
        if fake is None:  # the generic format, as `didchat simulate sms` signs it
            url, body, headers = signed_sms(config, config.connector_of(number), senders[n % len(senders)], number,
                                            f"bench {n}", f"{run_id}{n:012d}")
            out.append(Request(n, server.url + url[len(server.url):], body, headers))
            continue
        public = f"{config.public_url.rstrip('/')}/webhooks/{fake.type}/{connector}"
        [hook] = fake.inbound(public, senders[n % len(senders)], number, f"bench {n}", f"{run_id}{n:012d}")
        out.append(Request(n, f"{server.url}/webhooks/{fake.type}/{connector}", hook.body, hook.headers))
    return out


def config_text(server, api_base: str | None = None, extra: str = "", connectors: str = "",
                numbers: str = "") -> str:
    """head_config(server), one Twilio connector (ACCOUNT_SID, AUTH_TOKEN) sending to `api_base`
    (default: a port where nothing listens, outbound unused), alice owning ALICE_NUMBER."""
    api_base = api_base or f"http://127.0.0.1:{free_port()}"
    return head_config(server) + extra + f"""\
presence_grace_seconds: 0
users:
  - {{name: alice, display_name: Alice, password: {PASSWORD}}}
access_numbers:
  - {{number: "{ALICE_NUMBER}", user: alice}}
{numbers}connectors:
  - type: twilio
    name: tw
    account_sid: {ACCOUNT_SID}
    auth_token: {AUTH_TOKEN}
    api_base: {api_base}
    numbers: ["{ALICE_NUMBER}"]
    pace: {{long_code: 0}}  # the pipeline's own speed, not a carrier's one segment a second
{connectors}"""


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


def build_requests(server, count: int, senders: list[str], run_id: str, first: int = 0,
                   first_node_only: bool = False) -> list[Request]:
    """Signed webhooks n = first .. first+count-1, built before the clock starts; the text carries n.

    Signed for the config's public_url; with several nodes (`server` a nodes.Cluster), request n
    is posted to node n mod N: every node checks the signature against the same public_url."""
    config = load_config(server.config_path)
    conn = config.connector_of(ALICE_NUMBER)
    node_url = getattr(server, "node_url", lambda n: server.url)
    if first_node_only:
        node_url = lambda n: server.url  # noqa: E731 - node 0's; the other nodes only belong to the cluster
    out = []
    for n in range(first, first + count):
        url, body, headers = signed_sms(config, conn, senders[n % len(senders)], ALICE_NUMBER,
                                        f"bench {n}", f"SM{run_id}{n:012d}")
        out.append(Request(n, node_url(n) + url[len(server.url):], body, headers))
    return out


class Clients:
    """The load generator's connections: --client raw (common.Http1, keep-alive, one request at a time on each)
    or aiohttp's client, `limit` connections at most."""

    def __init__(self, kind: str, limit: int):
        self.kind = kind
        self.idle: dict[str, list[Http1]] = {}
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) if kind == "aiohttp" else None

    async def post(self, req: Request, timeout: float) -> int:
        if self.http is not None:
            async with self.http.post(req.url, data=req.body, headers=req.headers,
                                      timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
                await answer.read()
                return answer.status
        node = req.url.split("/", 3)[2]
        idle = self.idle.setdefault(node, [])
        client = idle.pop() if idle else Http1(req.url)
        status = await client.post(req.url, req.body, req.headers, timeout)
        idle.append(client)  # not kept when it raised: its connection was closed
        return status

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        for client in (c for clients in self.idle.values() for c in clients):
            client.close()


async def send(clients: Clients, req: Request, timeout: float) -> None:
    req.start = time.perf_counter()
    try:
        req.status = await clients.post(req, timeout)
        if req.status != 200:
            req.error = f"HTTP {req.status}"
    except (TimeoutError, aiohttp.ClientError, OSError, asyncio.IncompleteReadError, ValueError) as err:
        req.error = type(err).__name__
    req.end = time.perf_counter()


# ---------------------------------------------------------------- phases

async def phase_max(server, agent: Agent, reqs: list[Request], args) -> dict:
    """Closed loop: `concurrency` workers send back to back until all are sent or `seconds` (if set) have passed."""
    nxt = iter(reqs)
    t0 = time.perf_counter()
    deadline = t0 + args.seconds if args.seconds else math.inf

    async def worker(clients):
        for req in nxt:  # shared iterator: bounded by len(reqs)
            if time.perf_counter() >= deadline:
                break
            await send(clients, req, args.request_timeout)

    clients = Clients(args.client, args.concurrency)
    try:
        await asyncio.gather(*(worker(clients) for _ in range(args.concurrency)))
    finally:
        await clients.close()
    sent = [r for r in reqs if r.start is not None]
    if args.seconds and len(sent) == len(reqs):
        print(f"  warning: all {len(reqs)} prebuilt requests were used; raise --max-messages", file=sys.stderr)
    return await collect(server, agent, sent, t0, args)


async def phase_rate(server, agent: Agent, reqs: list[Request], args) -> dict:
    """Open loop: request i starts at t0 + i/rate, at most `concurrency` in flight."""
    slots = asyncio.Semaphore(args.concurrency)
    tasks: set[asyncio.Task] = set()
    late = 0

    async def one(clients, req):
        try:
            await send(clients, req, args.request_timeout)
        finally:
            slots.release()

    clients = Clients(args.client, args.concurrency)
    try:
        pace = Pace(args.rate)
        t0 = pace.t0
        for i, req in enumerate(reqs):  # bounded: len(reqs)
            req.planned = await pace.wait(i)
            if slots.locked():
                late += 1
            await slots.acquire()  # bounded concurrency: wait for a slot (counted as late)
            task = asyncio.create_task(one(clients, req))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=args.request_timeout + 5)
    finally:
        await clients.close()
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


async def collect(server, agent: Agent, sent: list[Request], t0: float, args) -> dict:
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
        "active_s": round(max(last_answer, last_push) - t0, 3),
        "stored_msgs_per_s": round(len(ok) / send_window, 1),
        "pushed": len(pushed),
        "missing_pushes": len(ok) - len(pushed),
        "delivered_msgs_per_s": round(len(pushed) / max(1e-9, last_push - t0), 1),
        "conversation_pushes": agent.conversations,
        "latency_ms": {"p50": ms(percentile(latencies, 50)), "p90": ms(percentile(latencies, 90)),
                       "p99": ms(percentile(latencies, 99)), "max": ms(max(latencies) if latencies else None)},
        "http_ms": {"p50": ms(percentile(http_times, 50)), "p99": ms(percentile(http_times, 99))},
    }


class WebhookIngest:
    """The benchmark on one target (nodes.Bench)."""

    name = "webhook"

    def __init__(self, target: nodes.Target, args):
        self.args = argparse.Namespace(**vars(args))  # this target's: --concurrency-per-node scales it
        if args.concurrency_per_node:
            self.args.concurrency = args.concurrency * target.nodes
        self.senders = customer_numbers(args.senders, exclude=(ALICE_NUMBER,))
        self.run_id = uuid.uuid4().hex[:12]
        # --provider: the ones measured (the generic format always, as the yardstick), in the table's order
        wanted = set(args.provider or PROVIDER_NUMBERS) | {"generic"}
        self.names = [name for name in PROVIDER_NUMBERS if name in wanted]

    async def setup(self, cluster: nodes.Cluster) -> str:
        self.cluster = cluster
        if not self.args.providers:
            return config_text(cluster)
        self.fakes = provider_fakes()
        for fake in self.fakes.values():
            await fake.start()  # their REST APIs are not called (nothing is sent); their URLs must be valid
        return config_text(cluster, connectors=provider_lines(self.fakes)[0], numbers=provider_lines(self.fakes)[1])

    async def connect(self, cluster: nodes.Cluster) -> None:
        """alice on node 0, and one unmeasured webhook from each customer: the conversations exist."""
        self.agent = Agent(cluster.nodes[0].url)
        await self.agent.connect()
        if self.args.providers:
            for i, name in enumerate(self.names):
                await phase_max(cluster, self.agent, provider_requests(
                    cluster, name, self.fakes.get(name), len(self.senders), self.senders, self.run_id,
                    WARM_UP * (i + 1)), self.args)
            return
        await phase_max(cluster, self.agent, build_requests(cluster, len(self.senders), self.senders, self.run_id,
                                                            WARM_UP), self.args)

    async def run_providers(self, index: int) -> dict:
        """Each provider's webhooks in turn (a new order each round), the generic format's result as the run's."""
        names = self.names
        names = names[index % len(names):] + names[:index % len(names)]
        each: dict[str, dict] = {}
        for i, name in enumerate(names):
            first = (index * len(names) + i) * self.args.messages
            reqs = provider_requests(self.cluster, name, self.fakes.get(name), self.args.messages, self.senders,
                                     self.run_id, first)
            server0, client0 = proc_cpu_seconds(self.cluster.pids()[0]), time.process_time()
            each[name] = await phase_max(self.cluster, self.agent, reqs, self.args)
            stored = max(1, each[name]["http_200"])  # CPU per stored message: steadier than msg/s on a shared machine
            each[name]["server_cpu_us"] = (proc_cpu_seconds(self.cluster.pids()[0]) - server0) / stored * 1e6
            each[name]["client_cpu_us"] = (time.process_time() - client0) / stored * 1e6
        base = each["generic"]
        # the run's CPU (nodes.run_once) is the whole round's: over every provider's messages and active time
        return dict(base, messages=sum(r["http_200"] for r in each.values()), msgs_per_s=base["stored_msgs_per_s"],
                    active_s=round(sum(r["active_s"] for r in each.values()), 3),
                    providers={name: {"msgs_per_s": r["stored_msgs_per_s"], "errors": r["errors"],
                                      "server_cpu_us": r["server_cpu_us"], "client_cpu_us": r["client_cpu_us"],
                                      "missing_pushes": r["missing_pushes"], "p99_ms": r["latency_ms"]["p99"]}
                               for name, r in each.items()})

    async def run(self, index: int) -> dict:
        if self.args.providers:
            return await self.run_providers(index)
        reqs = build_requests(self.cluster, self.args.messages, self.senders, self.run_id, index * self.args.messages,
                              self.args.first_node_only)
        if self.args.rate:
            result = await phase_rate(self.cluster, self.agent, reqs, self.args)
        else:
            result = await phase_max(self.cluster, self.agent, reqs, self.args)
        return dict(result, messages=result["http_200"], msgs_per_s=result["stored_msgs_per_s"])

    async def close(self) -> None:
        if hasattr(self, "agent"):
            await self.agent.disconnect()
        for fake in getattr(self, "fakes", {}).values():
            await fake.stop()


def provider_table(results: list[dict]) -> str:
    """Per provider and target: the median msg/s over the rounds, and the median over rounds of its ratio to the
    generic format's in the same round (the same moment of the machine)."""
    lines = ["provider".ljust(18) + "".join(f"{r['target']:>40}" for r in results),
             " " * 18 + "".join(f"{'(x generic; CPU a message: node/client)':>40}" for _ in results)]
    names = [n for n in PROVIDER_NUMBERS if all(n in run["providers"] for r in results for run in r["runs"])]
    for name in names:
        cells = []
        for r in results:
            rates = sorted(run["providers"][name]["msgs_per_s"] for run in r["runs"])
            ratios = sorted(run["providers"][name]["msgs_per_s"] / run["providers"]["generic"]["msgs_per_s"]
                            for run in r["runs"] if run["providers"]["generic"]["msgs_per_s"])
            errors = sum(sum(run["providers"][name]["errors"].values()) + run["providers"][name]["missing_pushes"]
                         for run in r["runs"])
            median = rates[(len(rates) - 1) // 2]
            ratio = ratios[(len(ratios) - 1) // 2] if ratios else float("nan")
            server = sorted(run["providers"][name]["server_cpu_us"] for run in r["runs"])
            client = sorted(run["providers"][name]["client_cpu_us"] for run in r["runs"])
            cells.append(f"{median:>6.0f} msg/s x{ratio:.2f} cpu {server[(len(server) - 1) // 2]:>4.0f}/"
                         f"{client[(len(client) - 1) // 2]:<4.0f}us{'  ERR ' + str(errors) if errors else ''}")
        lines.append(name.ljust(18) + "".join(f"{c:>40}" for c in cells))
    worst = min((run["providers"][n]["msgs_per_s"] / run["providers"]["generic"]["msgs_per_s"]
                 for r in results for run in r["runs"] for n in names
                 if run["providers"]["generic"]["msgs_per_s"]), default=float("nan"))
    lines.append(f"\nlowest ratio of any provider in any round: x{worst:.2f} (target: each >= x0.9 the generic format's)")
    return "\n".join(lines)


ROWS = [
    ("requests sent", ("sent",)), ("errors", ("errors",)), ("delivered msg/s (pushes/s)", ("delivered_msgs_per_s",)),
    ("missing pushes", ("missing_pushes",)), ("HTTP answer p99 ms", ("http_ms", "p99")),
    ("p99 from planned start ms", ("latency_from_planned_ms", "p99")),
    ("starts waiting for a slot", ("starts_waiting_for_a_slot",)),
]


def verdict(results: list[dict], args) -> str:
    """The issue's targets, read from the table."""
    lines = []
    for r in results:
        t = nodes.typical(r)
        if args.rate:
            p99 = t["latency_ms"]["p99"]
            met = p99 is not None and p99 <= TARGETS["p99_ms_at_500"] and not t["missing_pushes"] and not t["errors"]
            lines.append(f"{r['target']}: p99 <= {TARGETS['p99_ms_at_500']} ms at {args.rate:g} msg/s: "
                         f"{'MET' if met else 'NOT MET'}")
        else:
            met = min(t["stored_msgs_per_s"], t["delivered_msgs_per_s"]) >= TARGETS["sustained_msgs_per_s"]
            lines.append(f"{r['target']}: >= {TARGETS['sustained_msgs_per_s']} msg/s: {'MET' if met else 'NOT MET'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    nodes.add_arguments(parser, messages=5000)
    parser.add_argument("--concurrency", type=int, default=64, help="senders / max requests in flight")
    parser.add_argument("--concurrency-per-node", action="store_true",
                        help="--concurrency senders per node (two nodes get twice the load): what each node costs "
                             "under the same load per node, instead of one load split over the nodes")
    parser.add_argument("--first-node-only", action="store_true",
                        help="post every webhook to node 0 (the others only belong to the cluster): what being in "
                             "a cluster costs, with batches as large as one node's")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="the load generator: a lean keep-alive HTTP/1.1 client (default, so the node, not "
                             "this process, is what a shared machine measures) or aiohttp's")
    parser.add_argument("--senders", type=int, default=200, help="distinct customer numbers (conversations)")
    parser.add_argument("--providers", action="store_true",
                        help="measure every SMS API's webhooks (and the generic format's) side by side on node 0")
    parser.add_argument("--provider", action="append", choices=sorted(PROVIDER_NUMBERS), metavar="NAME",
                        help="with --providers: measure only this one (repeatable) beside the generic format")
    parser.add_argument("--seconds", type=float, default=0.0, help="as fast as it goes: stop sending after this long (0: never)")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=15.0, help="wait for outstanding pushes")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    nodes.check_arguments(parser, args)
    if args.concurrency < 1 or not 0 <= args.seconds <= 600:
        parser.error("need --concurrency >= 1, 0 <= --seconds <= 600")

    loop_name = use_uvloop()
    info = machine()
    print(f"{machine_line(info)}  (client loop: {loop_name})\n{code_line()}")
    results = nodes.measure_all(WebhookIngest, args)
    mode = f"fixed {args.rate:g} msg/s" if args.rate else f"as fast as it goes, concurrency {args.concurrency}"
    mode += " per node" if args.concurrency_per_node else ""
    spread = "all to node 0" if args.first_node_only else "round robin over the nodes"
    summary = (f"{machine_line(info)}\n{code_line()}\nwebhook ingest: {args.messages} signed webhooks a run, {mode}, "
               f"{args.senders} customer numbers, {spread}, alice on node 0\n\n"
               + nodes.report(results, ROWS) + "\n\n" + verdict(results, args))
    if args.providers:
        summary += "\n\nper provider (webhooks signed as each provider signs them, on node 0):\n" + provider_table(results)
    print("\n" + summary)
    write_results(args.output, {
        "benchmark": "webhook_ingest", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "code": code_line(), "client_loop": loop_name, "targets": TARGETS,
        "params": params_of(args), "results": results,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
