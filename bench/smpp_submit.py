"""SMPP submit benchmark: agents' Socket.IO `send`s out as submit_sm to a test SMSC.

The SMSC (tests.fakes.smsc.TestSmsc, answering every submit_sm at once, or after --delays
seconds to emulate a round trip) runs in this process; for each target (nodes.py: SQLite,
PostgreSQL with one node, PostgreSQL with two nodes sharing Redis) `didchat run` processes bind
to it with the connector's `window` = the SMSC's window. For each mode in --modes, each window in
--windows and each delay in --delays, on every target:

  1. --conversations customers each send one deliver_sm, so alice (connected to every node with a
     python-socketio client) owns that many conversations;
  2. each run, drain mode only: the SMSC drops the link(s) and refuses reconnects, so what alice
     sends waits in the outbox;
  3. alice sends --messages single-segment replies (`reply <n>`): conversation n mod C, from her
     client on node n mod N (didchat keeps one message in flight per conversation), at most
     --concurrency `send` calls unanswered, as fast as answered or at a fixed --rate;
  4. drain mode only: the SMSC takes connections again; the connector rebinds and the outbox
     drains (the outbound throughput of the connector: the issue's target is read here);
  5. measured: msg/s = accepted submit_sm per second at the SMSC (drain: first to last accepted;
     live: first send to last accepted), `send` acks per second, send -> submit_sm latency, the
     most submit_sm the SMSC saw in flight, duplicate submits (must be 0).

With one bind per connector (a lease, issue 9) only the node holding it submits; until then every
node binds and submits its own outbox rows (`SMSC binds` says which).

    .venv/bin/python bench/smpp_submit.py [--modes drain,live --windows 1,10,50 --delays 0,0.002 --messages 5000]
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nodes  # noqa: E402
from common import (  # noqa: E402
    REPO,
    RESULTS_DIR,
    SMPP_DEST,
    Agent,
    Replies,
    TimedList,
    arrivals,
    code_line,
    conversations_of,
    latency_summary,
    machine,
    machine_line,
    params_of,
    send_replies,
    smpp_config_text,
    smpp_customers,
    until_arrived,
    use_uvloop,
    write_results,
)

sys.path.insert(0, str(REPO))
from tests.fakes.smsc import TestSmsc  # noqa: E402

RESULTS = RESULTS_DIR / "smpp_submit.json"
TARGETS = {"segments_per_s_at_window_50": 3000}


def accepted_text(submit) -> str | None:
    return submit.short_message.decode("latin-1") if submit.accepted else None


class SmppSubmit:
    """The benchmark on one target, for one mode, window and SMSC delay (nodes.Bench)."""

    name = "submit"

    def __init__(self, target: nodes.Target, args, mode: str, window: int, delay: float):
        self.args, self.mode, self.window, self.delay = args, mode, window, delay
        self.customers = smpp_customers(args.conversations)
        self.run_id = uuid.uuid4().hex[:8]
        self.smsc: TestSmsc | None = None
        self.agents: list[Agent] = []

    async def setup(self, cluster: nodes.Cluster) -> str:
        self.smsc = await TestSmsc("didchat", "secret", window=self.window, id_format="hex").start()
        self.smsc.submits = TimedList()
        return smpp_config_text(cluster, self.smsc.port, self.window, self.args.outbox_concurrency)

    async def connect(self, cluster: nodes.Cluster) -> None:
        """alice on every node; one deliver_sm from each customer: the conversations she replies in."""
        await self.smsc.wait_for_sessions(1, timeout=30)
        self.agents = [Agent(node.url) for node in cluster.nodes]
        for agent in self.agents:
            await agent.connect()
        batch = [{"source": c, "dest": SMPP_DEST, "short_message": f"open {i}".encode()}
                 for i, c in enumerate(self.customers)]
        statuses = await self.smsc.deliver_many(batch, window=self.window, timeout=self.args.timeout)
        if any(s != 0 for s in statuses):
            raise RuntimeError(f"opening deliver_sm not all ROK: {statuses[:10]}")
        self.conversations = await conversations_of(self.agents, ["+" + c for c in self.customers], self.args.timeout)
        self.smsc.slow_responses(self.delay)

    async def run(self, index: int) -> dict:
        replies = range(index * self.args.messages, (index + 1) * self.args.messages)
        self.smsc.max_in_flight = 0
        if self.mode == "drain":  # the SMSC goes away; alice's replies wait in the outbox
            self.smsc.refuse_connections_for(3600)
            self.smsc.drop_links()
            await self.smsc.until(lambda: not self.smsc.sessions, timeout=10, what="the link to drop")
        before = len(self.smsc.submits)
        sent = await send_replies(self.agents, self.conversations, replies, self.run_id, self.args.concurrency,
                                  self.args.rate, self.args.timeout)
        if self.mode == "drain":
            if len(self.smsc.submits) != before:
                raise RuntimeError("submit_sm reached the SMSC while its link was down")
            self.smsc.refuse_connections_for(0)  # the connector rebinds (reconnect_max 0.5 s) and the outbox drains
        await until_arrived(self.smsc.submits, before, accepted_text, set(sent.acked), self.args.timeout)
        return self.collect(replies, before, sent)

    def collect(self, replies: range, before: int, sent: Replies) -> dict:
        submits = self.smsc.submits
        when, accepted = arrivals(submits, before, accepted_text, replies)
        times = sorted(when.values())
        first, last = (times[0], times[-1]) if times else (sent.t0, sent.t0)
        last_ack = max(sent.acked.values(), default=sent.t0)
        drain_rate = round(accepted / max(1e-9, last - first), 1)
        live_rate = round(accepted / max(1e-9, last - sent.t0), 1)
        return {
            "replies": len(replies), "acked": len(sent.acked), "errors": sent.errors,
            "messages": len(when), "submits_accepted": accepted,
            "submits_not_accepted": sum(1 for s in submits[before:] if not s.accepted),
            "duplicate_submits": accepted - len(when), "replies_never_submitted": len(set(sent.acked) - when.keys()),
            "msgs_per_s": drain_rate if self.mode == "drain" else live_rate,
            "segments_per_s": drain_rate, "segments_per_s_from_first_send": live_rate,
            "ack_per_s": round(len(sent.acked) / max(1e-9, last_ack - sent.t0), 1),
            "active_s": round(max(last, last_ack) - sent.t0, 3),
            "latency_ms": latency_summary([when[n] - sent.started[n] for n in when if n in sent.started]),
            "ack_ms": latency_summary([a - sent.started[n] for n, a in sent.acked.items()]),
            "smsc_max_in_flight": self.smsc.max_in_flight, "smsc_binds": len(self.smsc.sessions),
            "mode": self.mode, "window": self.window, "smsc_delay_s": self.delay,
        }

    async def close(self) -> None:
        for agent in self.agents:
            await agent.disconnect()
        if self.smsc is not None:
            await self.smsc.stop()


ROWS = [
    ("replies acked", ("acked",)), ("errors", ("errors",)), ("send acks/s", ("ack_per_s",)),
    ("segments/s first to last submit", ("segments_per_s",)), ("submits not accepted", ("submits_not_accepted",)),
    ("duplicate submits", ("duplicate_submits",)), ("replies never submitted", ("replies_never_submitted",)),
    ("SMSC max in flight", ("smsc_max_in_flight",)), ("SMSC binds", ("smsc_binds",)),
]


def verdict(results: list[dict], window: int, mode: str) -> str:
    if window != 50 or mode != "drain":
        return ""
    goal = TARGETS["segments_per_s_at_window_50"]
    return "\n" + "\n".join(f"{r['target']}: >= {goal} segments/s at window 50 (drain): "
                             f"{'MET' if nodes.typical(r)['segments_per_s'] >= goal else 'NOT MET'}" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    nodes.add_arguments(parser, messages=5000)
    parser.add_argument("--windows", default="50", help="comma-separated connector/SMSC windows")
    parser.add_argument("--modes", default="drain,live", help="drain: replies queued while the link is down, "
                        "then the outbox drains; live: submits while alice sends")
    parser.add_argument("--delays", default="0.002", help="comma-separated submit_sm_resp delays (s)")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=100, help="`send` calls unanswered at most")
    parser.add_argument("--outbox-concurrency", type=int, default=0, help="outbox.concurrency (0: server default)")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound on each wait")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    nodes.check_arguments(parser, args)
    windows = [int(w) for w in args.windows.split(",") if w]
    delays = [float(d) for d in args.delays.split(",") if d]
    modes = [m for m in args.modes.split(",") if m]
    if not (windows and all(1 <= w <= 1000 for w in windows) and delays and all(0 <= d <= 1 for d in delays)
            and modes and not set(modes) - {"drain", "live"} and 0 < args.conversations
            and args.concurrency >= 1 and 0 < args.timeout <= 600):
        parser.error("need windows in 1..1000, delays in 0..1 s, --modes drain and/or live, --timeout <= 600")

    loop_name = use_uvloop()
    info = machine()
    print(f"{machine_line(info)}  (bench loop: {loop_name})\n{code_line()}")
    summaries, everything = [], []
    for mode in modes:
        for window in windows:
            for delay in delays:
                results = nodes.measure_all(partial(SmppSubmit, mode=mode, window=window, delay=delay), args)
                everything.append({"mode": mode, "window": window, "smsc_delay_s": delay, "results": results})
                summaries.append(f"{mode}, window {window}, SMSC delay {delay * 1000:g} ms\n"
                                 + nodes.report(results, ROWS) + verdict(results, window, mode))
    rate = f"at {args.rate:g} msg/s" if args.rate else f"{args.concurrency} sends unanswered at most"
    print(f"\n{machine_line(info)}\n{code_line()}\n{args.messages} single-segment replies a run over "
          f"{args.conversations} conversations, {rate}, outbox concurrency {args.outbox_concurrency or 'default'}, "
          f"alice on every node\n\n" + "\n\n".join(summaries))
    write_results(args.output, {
        "benchmark": "smpp_submit", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "code": code_line(), "bench_loop": loop_name, "targets": TARGETS,
        "params": params_of(args), "results": everything,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
