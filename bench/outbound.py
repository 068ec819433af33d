"""Outbound benchmark: agents' Socket.IO `send`s out as requests to a provider's REST API.

The provider is tests.fakes.twilio_api.FakeTwilioApi (Twilio's documented wire format, answering
201 at once) in this process; for each target (nodes.py: SQLite, PostgreSQL with one node,
PostgreSQL with two nodes sharing Redis) `didchat run` processes send to it through one Twilio
connector. alice is connected to every node (one python-socketio client each); --conversations
customers text her first (webhooks round robin over the nodes), so she owns that many
conversations. Each run, she sends --messages single-segment replies (`reply <n>`): reply n in
conversation n mod C, from her client on node n mod N, at most --concurrency `send`s unanswered;
as fast as they are answered (default) or at a fixed --rate (open loop). didchat keeps one
message in flight per conversation, hence the many conversations.

msg/s = provider requests per second (first send to the last reply's request); latency = `send`
started -> its request reached the provider; duplicate requests (a reply sent more than once)
must be 0. With several nodes every row of the outbox must be claimed by one node only.

    .venv/bin/python bench/outbound.py [--messages 3000 --rate 300 --nodes 2 --repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nodes  # noqa: E402
from common import (  # noqa: E402
    RESULTS_DIR,
    Agent,
    Replies,
    TimedList,
    arrivals,
    code_line,
    conversations_of,
    customer_numbers,
    latency_summary,
    machine,
    machine_line,
    params_of,
    send_replies,
    until_arrived,
    use_uvloop,
    write_results,
)
from webhook_ingest import ACCOUNT_SID, ALICE_NUMBER, AUTH_TOKEN, build_requests, config_text, phase_max  # noqa: E402

from tests.fakes.twilio_api import FakeTwilioApi  # noqa: E402

RESULTS = RESULTS_DIR / "outbound.json"
OPENING = 10**9  # the numbers of the customers' first webhooks, apart from the replies' 0, 1, ...


def body_of(form: dict) -> str | None:
    return form.get("Body")


class Outbound:
    """The benchmark on one target (nodes.Bench)."""

    name = "outbound"

    def __init__(self, target: nodes.Target, args):
        self.args = args
        self.customers = customer_numbers(args.conversations, exclude=(ALICE_NUMBER,))
        self.run_id = uuid.uuid4().hex[:8]
        self.api: FakeTwilioApi | None = None
        self.agents: list[Agent] = []

    async def setup(self, cluster: nodes.Cluster) -> str:
        self.api = await FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN).start()
        self.api.requests = TimedList()
        outbox = f"outbox: {{concurrency: {self.args.outbox_concurrency}}}\n" if self.args.outbox_concurrency else ""
        return config_text(cluster, self.api.base_url, extra=outbox)

    async def connect(self, cluster: nodes.Cluster) -> None:
        """alice on every node; one webhook from each customer: the conversations she replies in."""
        self.agents = [Agent(node.url) for node in cluster.nodes]
        for agent in self.agents:
            await agent.connect()
        opening = build_requests(cluster, len(self.customers), self.customers, self.run_id, OPENING)
        await phase_max(cluster, self.agents[0], opening, argparse.Namespace(
            seconds=0, concurrency=16, request_timeout=self.args.timeout, drain_timeout=0))
        self.conversations = await conversations_of(self.agents, self.customers, self.args.timeout)

    async def run(self, index: int) -> dict:
        first, count = index * self.args.messages, self.args.messages
        before = len(self.api.requests)
        replies = await send_replies(self.agents, self.conversations, range(first, first + count), self.run_id,
                                     self.args.concurrency, self.args.rate, self.args.timeout)
        await until_arrived(self.api.requests, before, body_of, set(replies.acked), self.args.timeout)
        return self.collect(range(first, first + count), before, replies)

    def collect(self, replies: range, before: int, sent: Replies) -> dict:
        """This run's requests at the provider: the first of each reply, and duplicates."""
        when, requests = arrivals(self.api.requests, before, body_of, replies)
        t0, started, acked = sent.t0, sent.started, sent.acked
        last = max(when.values(), default=t0)
        last_ack = max(acked.values(), default=t0)
        return {
            "replies": len(replies), "acked": len(acked), "errors": sent.errors,
            "messages": len(when), "provider_requests": requests,
            "duplicate_requests": requests - len(when), "replies_never_sent": len(set(acked) - when.keys()),
            "msgs_per_s": round(len(when) / max(1e-9, last - t0), 1),
            "acks_per_s": round(len(acked) / max(1e-9, last_ack - t0), 1),
            "active_s": round(max(last, last_ack) - t0, 3),
            "latency_ms": latency_summary([when[n] - started[n] for n in when if n in started]),
            "ack_ms": latency_summary([acked[n] - started[n] for n in acked]),
        }

    async def close(self) -> None:
        for agent in self.agents:
            await agent.disconnect()
        if self.api is not None:
            await self.api.stop()


ROWS = [
    ("replies acked", ("acked",)), ("errors", ("errors",)), ("send acks/s", ("acks_per_s",)),
    ("send ack p99 ms", ("ack_ms", "p99")), ("provider requests", ("provider_requests",)),
    ("duplicate requests", ("duplicate_requests",)), ("replies never sent", ("replies_never_sent",)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    nodes.add_arguments(parser, messages=3000)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=100, help="`send` calls unanswered at most")
    parser.add_argument("--outbox-concurrency", type=int, default=0, help="outbox.concurrency (0: server default)")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound on each wait")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    nodes.check_arguments(parser, args)
    if not (0 < args.conversations <= 5000 and args.concurrency >= 1 and 0 < args.timeout <= 600):
        parser.error("need 0 < --conversations <= 5000, --concurrency >= 1, 0 < --timeout <= 600")

    loop_name = use_uvloop()
    info = machine()
    print(f"{machine_line(info)}  (bench loop: {loop_name})\n{code_line()}")
    results = nodes.measure_all(Outbound, args)
    mode = f"fixed {args.rate:g} msg/s" if args.rate else f"as fast as answered, {args.concurrency} unanswered at most"
    summary = (f"{machine_line(info)}\n{code_line()}\noutbound: {args.messages} replies a run over "
               f"{args.conversations} conversations, {mode}, alice on every node, fake Twilio API\n\n"
               + nodes.report(results, ROWS))
    print("\n" + summary)
    write_results(args.output, {
        "benchmark": "outbound", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "code": code_line(), "bench_loop": loop_name, "params": params_of(args), "results": results,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
