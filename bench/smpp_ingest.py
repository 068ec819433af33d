"""SMPP ingest benchmark: deliver_sm from a test SMSC in this process, Socket.IO pushes out.

The SMSC (tests.fakes.smsc.TestSmsc) runs in this process; `didchat run` runs as a separate
process (fresh SQLite database per phase) bound to it as a transceiver with --window. The agent
alice (owner of the SMPP number) is connected with a python-socketio client (websocket).

  (a) max: N deliver_sm (distinct texts `bench <n>`, --senders customer numbers), up to --window
      in flight at the SMSC; durable msgs/s (ROK deliver_sm_resp per second: didchat answers ROK
      only after the commit), delivered msgs/s (pushes to the agent per second), deliver_sm ->
      agent latency percentiles;
  (b) fixed rate: an open-loop schedule of --rate msgs/s for --seconds (deliver_sm i is sent at
      t0 + i/rate, or as soon as a window slot frees if the window is full: counted);
      deliver_sm-sent -> agent-received latency p50/p99/max, also from the planned send time.

--driver raw (default) sends deliver_sm PDUs encoded before the clock starts on the TestSmsc's
bound session (its own sequence numbers and response matching); --driver testsmsc awaits
TestSmsc.deliver() per message (what deliver_many does), which costs much more CPU here.
Server and benchmark-process CPU % are reported, since both share the machine.

    .venv/bin/python bench/smpp_ingest.py [--messages 20000 --rate 1000 --seconds 10 --window 50]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    REPO,
    RESULTS_DIR,
    SMPP_DEST,
    Agent,
    CpuMeter,
    ServerProcess,
    code_line,
    hold,
    latency_summary,
    machine,
    machine_line,
    ms,
    params_of,
    percentile,
    phase_rows,
    smpp_config_text,
    smpp_customers,
    text_table,
    use_uvloop,
    write_results,
)

sys.path.insert(0, str(REPO))
from gateway.smpp.pdu import ESME_ROK, encode, request  # noqa: E402
from tests.fakes.smsc import TestSmsc  # noqa: E402

RESULTS = RESULTS_DIR / "smpp_ingest.json"
TARGETS = {"durable_msgs_per_s": 3000, "p99_ms_at_1000": 50}


@dataclass
class Mo:
    """One deliver_sm: what it carries and when things happened (perf_counter seconds)."""

    n: int
    source: str
    planned: float | None = None
    sent: float | None = None
    answered: float | None = None
    status: int | None = None


class Driver:
    """Sends deliver_sm on the SMSC's receiving session, at most `window` unanswered."""

    def __init__(self, smsc: TestSmsc, window: int, mode: str, timeout: float):
        self.smsc, self.window, self.mode, self.timeout = smsc, window, mode, timeout
        self.in_flight = 0
        self._free = asyncio.Event()
        self._free.set()
        self.conn = next(s for s in smsc.sessions if s.receives)
        self.frames: dict[int, tuple[int, bytes]] = {}

    def prepare(self, mos: list[Mo]) -> None:
        """raw: encode every PDU (with its sequence number) before the clock starts."""
        if self.mode != "raw":
            return
        for mo in mos:
            seq = self.conn.session.next_sequence()
            self.frames[mo.n] = (seq, encode(request(
                "deliver_sm", seq, None, source_addr=mo.source, source_addr_ton=1, source_addr_npi=1,
                destination_addr=SMPP_DEST, dest_addr_ton=1, dest_addr_npi=1, esm_class=0, data_coding=0,
                short_message=f"bench {mo.n}".encode())))

    async def slot(self) -> bool:
        """Wait for a free window slot; True if it had to wait."""
        waited = False
        deadline = time.perf_counter() + self.timeout
        while self.in_flight >= self.window:  # bounded: each wait ends by the timeout
            waited = True
            self._free.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no window slot freed")
            try:
                await asyncio.wait_for(self._free.wait(), left)
            except TimeoutError:
                pass
        return waited

    def _done(self, mo: Mo, status: int | None) -> None:
        mo.answered, mo.status = time.perf_counter(), status
        self.in_flight -= 1
        self._free.set()

    def send(self, mo: Mo, tasks: set) -> None:
        """Send now (a slot must be free)."""
        self.in_flight += 1
        if self.mode == "raw":
            seq, frame = self.frames.pop(mo.n)
            answer = asyncio.get_running_loop().create_future()
            self.conn.pending[seq] = answer
            mo.sent = time.perf_counter()
            self.conn.writer.write(frame)
            handle = asyncio.get_running_loop().call_later(self.timeout, self._expire, seq, answer)

            def settled(fut, mo=mo, seq=seq, handle=handle):
                handle.cancel()
                self.conn.pending.pop(seq, None)
                self._done(mo, fut.result().status if not fut.cancelled() and fut.exception() is None else None)
            answer.add_done_callback(settled)
        else:
            mo.sent = time.perf_counter()
            task = asyncio.create_task(self._deliver(mo))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def _expire(self, seq: int, answer: asyncio.Future) -> None:
        if not answer.done():
            answer.set_exception(TimeoutError(f"no deliver_sm_resp for {seq}"))

    async def _deliver(self, mo: Mo) -> None:
        try:
            status = await self.smsc.deliver(mo.source, SMPP_DEST, f"bench {mo.n}".encode(), timeout=self.timeout)
        except (TimeoutError, ConnectionError):
            status = None
        self._done(mo, status)

    async def drain(self, tasks: set) -> None:
        deadline = time.perf_counter() + self.timeout + 1
        while self.in_flight and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if tasks:
            await asyncio.wait(tasks, timeout=1)


# ---------------------------------------------------------------- phases

async def phase_max(driver: Driver, mos: list[Mo], args) -> float:
    tasks: set = set()
    t0 = time.perf_counter()
    for mo in mos:  # bounded: len(mos)
        await driver.slot()
        driver.send(mo, tasks)
    await driver.drain(tasks)
    return t0


async def phase_rate(driver: Driver, mos: list[Mo], args) -> tuple[float, int]:
    tasks: set = set()
    late = 0
    t0 = time.perf_counter() + 0.05
    for i, mo in enumerate(mos):  # bounded: rate * seconds messages
        mo.planned = t0 + i / args.rate
        delay = mo.planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if await driver.slot():
            late += 1
        driver.send(mo, tasks)
    await driver.drain(tasks)
    return t0, late


def collect(agent: Agent, mos: list[Mo], t0: float) -> dict:
    sent = [m for m in mos if m.sent is not None]
    ok = [m for m in sent if m.status == ESME_ROK]
    statuses: dict[str, int] = {}
    for m in sent:
        if m.status != ESME_ROK:
            key = "no answer" if m.status is None else f"0x{m.status:02x}"
            statuses[key] = statuses.get(key, 0) + 1
    pushed = [m for m in ok if m.n in agent.received]
    latencies = [agent.received[m.n] - m.sent for m in pushed]
    last_rok = max((m.answered for m in ok), default=t0)
    last_push = max((agent.received[m.n] for m in pushed), default=t0)
    return {
        "sent": len(sent),
        "rok": len(ok),
        "not_rok": statuses,
        "send_window_s": round(last_rok - t0, 3),
        "durable_msgs_per_s": round(len(ok) / max(1e-9, last_rok - t0), 1),
        "pushed": len(pushed),
        "missing_pushes": len(ok) - len(pushed),
        "delivered_msgs_per_s": round(len(pushed) / max(1e-9, last_push - t0), 1),
        "conversation_pushes": agent.conversations,
        "latency_ms": latency_summary(latencies),
        "rok_ms": latency_summary([m.answered - m.sent for m in ok]),
    }


async def run_phase(name: str, args, senders: list[str]) -> dict:
    smsc = await TestSmsc("didchat", "secret", window=args.window, id_format="hex").start()
    server = ServerProcess(f"smpp-{name}", keep=args.keep)
    print(f"phase {name}: starting didchat on {server.url} ({server.dir}), TestSmsc on {smsc.port}", flush=True)
    server.start(smpp_config_text(server, smsc.port, args.window))
    agent = Agent(server.url)
    try:
        await smsc.wait_for_sessions(1, timeout=15)
        await agent.connect()
        count = args.messages if name == "max" else int(args.rate * args.seconds)
        mos = [Mo(n, senders[n % len(senders)]) for n in range(count)]
        driver = Driver(smsc, args.window, args.driver, args.response_timeout)
        driver.prepare(mos)
        await hold(server, args.hold)
        meter = CpuMeter(server)
        if name == "max":
            t0 = await phase_max(driver, mos, args)
        else:
            t0, late = await phase_rate(driver, mos, args)
        meter.read(cpu := {})
        await agent.wait_for({m.n for m in mos if m.status == ESME_ROK}, args.drain_timeout)
        result = collect(agent, mos, t0)
        result.update(cpu)  # CPU over the sending part (until the last deliver_sm_resp)
        if name == "rate":
            result["target_rate"] = args.rate
            result["sends_waiting_for_a_window_slot"] = late
            lag = [m.sent - m.planned for m in mos if m.sent is not None]
            result["send_lag_ms"] = {"p50": ms(percentile(lag, 50)), "p99": ms(percentile(lag, 99)),
                                     "max": ms(max(lag) if lag else None)}
            corrected = [agent.received[m.n] - m.planned for m in mos if m.n in agent.received]
            result["latency_from_planned_ms"] = latency_summary(corrected, (50, 99))
        result["smsc_counters"] = dict(smsc.counters)
        result["server_log_warnings"] = server.log_warnings()
        result["window"] = args.window
        result["driver"] = args.driver
        return result
    finally:
        await agent.disconnect()
        server.stop()
        await smsc.stop()


# ---------------------------------------------------------------- report

def table(results: dict, info: dict, args) -> str:
    a, b = results.get("max", {}), results.get("rate", {})
    rows = phase_rows(("", f"max ({args.messages} deliver_sm)", f"fixed {args.rate:g} msg/s"), [
        ("deliver_sm sent", ("sent",)), ("ROK", ("rok",)), ("not ROK", ("not_rok",)),
        ("durable msgs/s (ROK/s)", ("durable_msgs_per_s",)), ("delivered msgs/s (pushes/s)", ("delivered_msgs_per_s",)),
        ("missing pushes", ("missing_pushes",)),
        ("deliver_sm->agent p50 ms", ("latency_ms", "p50")), ("deliver_sm->agent p90 ms", ("latency_ms", "p90")),
        ("deliver_sm->agent p99 ms", ("latency_ms", "p99")), ("deliver_sm->agent max ms", ("latency_ms", "max")),
        ("deliver_sm->ROK p50 ms", ("rok_ms", "p50")), ("deliver_sm->ROK p99 ms", ("rok_ms", "p99")),
        ("server CPU %", ("server_cpu_pct",)), ("bench process (SMSC) CPU %", ("bench_process_cpu_pct",)),
    ], a, b)
    if b:
        rows += phase_rows(("", "", ""), [("p99 from planned send ms", ("latency_from_planned_ms", "p99")),
                                          ("sends waiting for a window slot", ("sends_waiting_for_a_window_slot",))], {}, b)[1:]
    head = (machine_line(info) + "\n" + code_line() + "\n"
            f"SMPP window {args.window}, driver {args.driver}, {args.senders} customer numbers, "
            f"fresh SQLite per phase\n")
    verdict = []
    if a:
        met = a["durable_msgs_per_s"] >= TARGETS["durable_msgs_per_s"] and not a["missing_pushes"]
        verdict.append(f"target >= {TARGETS['durable_msgs_per_s']} inbound msg/s durable: {'MET' if met else 'NOT MET'}")
    if b:
        p99 = b["latency_ms"]["p99"]
        met = p99 is not None and p99 <= TARGETS["p99_ms_at_1000"] and not b["missing_pushes"] and not b["not_rok"]
        verdict.append(f"target p99 <= {TARGETS['p99_ms_at_1000']} ms at {args.rate:g} msg/s: {'MET' if met else 'NOT MET'}")
    return head + "\n" + text_table(rows) + "\n\n" + "\n".join(verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000, help="max phase: deliver_sm count")
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate phase: msgs/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="fixed-rate phase: length")
    parser.add_argument("--window", type=int, default=50, help="deliver_sm in flight (SMSC) and connector window")
    parser.add_argument("--senders", type=int, default=200, help="distinct customer numbers (conversations)")
    parser.add_argument("--driver", choices=["raw", "testsmsc"], default="raw")
    parser.add_argument("--phase", choices=["both", "max", "rate"], default="both")
    parser.add_argument("--response-timeout", type=float, default=30.0, help="per deliver_sm")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="wait for outstanding pushes")
    parser.add_argument("--hold", type=float, default=0.0, help="pause before each phase (to attach a profiler)")
    parser.add_argument("--keep", action="store_true", help="keep each phase's temp dir (config, db, log)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (0 < args.messages <= 1_000_000 and 0 < args.seconds <= 600 and args.rate > 0 and 1 <= args.window <= 1000):
        parser.error("need 0 < --messages <= 1e6, 0 < --seconds <= 600, --rate > 0, 1 <= --window <= 1000")

    loop_name = use_uvloop()
    info = machine()
    senders = smpp_customers(args.senders)
    args.senders = len(senders)
    print(f"{machine_line(info)}  (bench loop: {loop_name})")
    results: dict = {}
    for name in (["max", "rate"] if args.phase == "both" else [args.phase]):
        results[name] = asyncio.run(run_phase(name, args, senders))
        print(f"  {name}: {json.dumps(results[name])}", flush=True)

    summary = table(results, info, args)
    print("\n" + summary)
    write_results(args.output, {
        "benchmark": "smpp_ingest", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "code": code_line(), "bench_loop": loop_name, "targets": TARGETS, "params": params_of(args),
        "results": results,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
