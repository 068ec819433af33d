"""SMPP submit benchmark: an agent's Socket.IO `send`s out as submit_sm to a test SMSC.

The SMSC (tests.fakes.smsc.TestSmsc, answering every submit_sm at once, or after --delays
seconds to emulate a round trip) runs in this process; `didchat run` runs as a separate process
(fresh SQLite database per run) bound to it with the connector's `window` = the SMSC's window.
For each mode in --modes, each window in --windows and each delay in --delays:

  1. --conversations customers each send one deliver_sm, so alice (connected with a
     python-socketio client) owns that many conversations;
  2. drain mode only: the SMSC drops the link and refuses reconnects, so what alice sends waits
     in the outbox;
  3. alice sends --replies single-segment replies (`reply <i>`), round robin over those
     conversations (didchat keeps one message in flight per conversation), at most
     --concurrency `send` calls unanswered;
  4. drain mode only: the SMSC takes connections again; the connector rebinds and the outbox
     drains (the outbound throughput of the connector: the issue's target is read here);
  5. measured: accepted submit_sm per second at the SMSC (first to last accepted), `send` acks
     per second, send -> submit_sm latency, the most submit_sm the SMSC saw in flight. In live
     mode the one agent client's `send` rate is what limits (acks/s = segments/s).

    .venv/bin/python bench/smpp_submit.py [--modes drain,live --windows 1,10,50 --delays 0,0.002 --replies 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
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
    params_of,
    smpp_config_text,
    smpp_customers,
    text_table,
    use_uvloop,
    write_results,
)

sys.path.insert(0, str(REPO))
from tests.fakes.smsc import TestSmsc  # noqa: E402

RESULTS = RESULTS_DIR / "smpp_submit.json"
TARGETS = {"segments_per_s_at_window_50": 3000}


class TimedList(list):
    """TestSmsc.submits that also keeps when each submit_sm was answered (perf_counter)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def append(self, item) -> None:
        self.times.append(time.perf_counter())
        super().append(item)


async def open_conversations(smsc: TestSmsc, agent: Agent, customers: list[str], timeout: float) -> list[int]:
    """One deliver_sm from each customer; the conversation ids alice was pushed."""
    batch = [{"source": c, "dest": SMPP_DEST, "short_message": f"open {i}".encode()} for i, c in enumerate(customers)]
    statuses = await smsc.deliver_many(batch, window=smsc.window, timeout=timeout)
    if any(s != 0 for s in statuses):
        raise RuntimeError(f"opening deliver_sm not all ROK: {statuses[:10]}")
    wanted = {"+" + c for c in customers}
    deadline = time.perf_counter() + timeout
    while not wanted.issubset(agent.conversation_of) and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    missing = wanted - agent.conversation_of.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} conversations were not pushed to alice")
    return [agent.conversation_of[n] for n in sorted(wanted)]


async def send_replies(smsc: TestSmsc, agent: Agent, conversations: list[int], args, drain: bool = False) -> dict:
    """live: submits happen while alice sends; drain: the link is down while she sends, then up."""
    submits: TimedList = smsc.submits  # type: ignore[assignment]
    before = len(submits)
    run = uuid.uuid4().hex[:8]
    slots = asyncio.Semaphore(args.concurrency)
    started: list[float] = [0.0] * args.replies
    acked: list[float | None] = [None] * args.replies
    errors: dict[str, int] = {}

    async def one(i: int) -> None:
        try:
            started[i] = time.perf_counter()
            ack = await agent.call("send", {"conversation_id": conversations[i % len(conversations)],
                                            "text": f"reply {i}", "client_id": f"{run}-{i}"}, timeout=args.timeout)
            if ack.get("ok"):
                acked[i] = time.perf_counter()
            else:
                errors[ack.get("error", "?")] = errors.get(ack.get("error", "?"), 0) + 1
        except Exception as err:  # noqa: BLE001 - counted
            errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
        finally:
            slots.release()

    tasks = []
    t0 = time.perf_counter()
    for i in range(args.replies):  # bounded: --replies
        await slots.acquire()
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.wait(tasks, timeout=args.timeout + 5)
    ok = sum(1 for a in acked if a is not None)
    if drain:
        if len(submits) != before:
            raise RuntimeError("submit_sm reached the SMSC while its link was down")
        smsc.refuse_connections_for(0)  # the connector rebinds (reconnect_max 0.5 s) and the outbox drains
    seen: set[bytes] = set()
    checked = before
    deadline = time.perf_counter() + args.timeout
    while len(seen) < ok and time.perf_counter() < deadline:  # every acked reply submitted at least once
        for s in submits[checked:]:
            if s.accepted:
                seen.add(s.short_message)
        checked = len(submits)
        if len(seen) < ok:
            await asyncio.sleep(0.02)

    mine = [(t, s) for t, s in zip(submits.times[before:], submits[before:])]
    accepted = [(t, s) for t, s in mine if s.accepted]
    first = accepted[0][0] if accepted else t0
    last = accepted[-1][0] if accepted else t0
    last_ack = max((a for a in acked if a is not None), default=t0)
    when_submitted: dict[int, float] = {}
    for t, s in accepted:
        text = s.short_message.decode("latin-1")
        if text.startswith("reply "):
            when_submitted.setdefault(int(text[6:]), t)
    send_to_submit = [when_submitted[i] - started[i] for i in range(args.replies) if i in when_submitted]
    return {
        "replies": args.replies,
        "acked": ok,
        "errors": errors,
        "ack_per_s": round(ok / max(1e-9, last_ack - t0), 1),
        "submits_accepted": len(accepted),
        "submits_not_accepted": len(mine) - len(accepted),
        "duplicate_submits": len(accepted) - len(when_submitted),  # a reply submitted more than once
        "replies_never_submitted": ok - len(when_submitted),
        "segments_per_s": round(len(accepted) / max(1e-9, last - first), 1),
        "segments_per_s_from_first_send": round(len(accepted) / max(1e-9, last - t0), 1),
        "submit_window_s": round(last - first, 3),
        "send_to_submit_ms": latency_summary(send_to_submit),
        "ack_ms": latency_summary([a - s for a, s in zip(acked, started) if a is not None]),
        "smsc_max_in_flight": smsc.max_in_flight,
    }


async def run_one(window: int, delay: float, args, customers: list[str], mode: str) -> dict:
    smsc = await TestSmsc("didchat", "secret", window=window, id_format="hex").start()
    smsc.submits = TimedList()
    label = f"{mode}-w{window}-d{delay:g}"
    server = ServerProcess(f"submit-{label}", keep=args.keep)
    print(f"run {label}: starting didchat on {server.url} ({server.dir}), TestSmsc on {smsc.port}", flush=True)
    server.start(smpp_config_text(server, smsc.port, window, args.outbox_concurrency))
    agent = Agent(server.url)
    try:
        await smsc.wait_for_sessions(1, timeout=15)
        await agent.connect()
        conversations = await open_conversations(smsc, agent, customers, args.timeout)
        smsc.slow_responses(delay)
        smsc.max_in_flight = 0
        await hold(server, args.hold)
        if mode == "drain":  # the SMSC goes away; alice's replies wait in the outbox
            smsc.refuse_connections_for(3600)
            smsc.drop_links()
            await smsc.until(lambda: not smsc.sessions, timeout=10, what="the link to drop")
        meter = CpuMeter(server)
        result = await send_replies(smsc, agent, conversations, args, drain=mode == "drain")
        meter.read(result)
        result.update(mode=mode, window=window, smsc_delay_s=delay, conversations=len(conversations),
                      server_log_warnings=server.log_warnings())
        return result
    finally:
        await agent.disconnect()
        server.stop()
        await smsc.stop()


def table(results: list[dict], info: dict, args) -> str:
    rows = [("mode", "window", "SMSC delay ms", "segments/s", "acks/s", "send->submit p50 ms", "p99 ms",
             "max in flight", "dup submits", "server CPU %", "bench CPU %", "errors")]
    for r in results:
        rows.append((r["mode"], str(r["window"]), f"{r['smsc_delay_s'] * 1000:g}", str(r["segments_per_s"]), str(r["ack_per_s"]),
                     str(r["send_to_submit_ms"]["p50"]), str(r["send_to_submit_ms"]["p99"]),
                     str(r["smsc_max_in_flight"]), str(r["duplicate_submits"]), str(r.get("server_cpu_pct", "-")),
                     str(r["bench_process_cpu_pct"]), json.dumps(r["errors"]) if r["errors"] else "0"))
    head = (machine_line(info) + "\n" + code_line() + "\n"
            f"{args.replies} single-segment replies over {args.conversations} conversations, "
            f"{args.concurrency} sends unanswered at most, outbox concurrency "
            f"{args.outbox_concurrency or 'default'}, fresh SQLite per run\n")
    at50 = [r for r in results if r["window"] == 50 and r["mode"] == "drain"]
    verdict = ""
    if at50:
        best = max(r["segments_per_s"] for r in at50)
        verdict = (f"\ntarget >= {TARGETS['segments_per_s_at_window_50']} segments/s at window 50 (drain): "
                   f"{'MET' if best >= TARGETS['segments_per_s_at_window_50'] else 'NOT MET'} (best {best})")
    return head + "\n" + text_table(rows) + "\n" + verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", default="1,10,50", help="comma-separated connector/SMSC windows")
    parser.add_argument("--modes", default="drain,live", help="drain: replies queued while the link is down, "
                        "then the outbox drains; live: submits while alice sends")
    parser.add_argument("--delays", default="0,0.002", help="comma-separated submit_sm_resp delays (s)")
    parser.add_argument("--replies", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=100, help="`send` calls unanswered at most")
    parser.add_argument("--outbox-concurrency", type=int, default=0, help="outbox.concurrency (0: server default)")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound on each wait")
    parser.add_argument("--hold", type=float, default=0.0, help="pause before each run (to attach a profiler)")
    parser.add_argument("--keep", action="store_true", help="keep each run's temp dir (config, db, log)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",") if w]
    delays = [float(d) for d in args.delays.split(",") if d]
    if not (windows and all(1 <= w <= 1000 for w in windows) and delays and all(0 <= d <= 1 for d in delays)
            and 0 < args.replies <= 200_000 and 0 < args.conversations and args.concurrency >= 1
            and 0 < args.timeout <= 600):
        parser.error("need windows in 1..1000, delays in 0..1 s, 0 < --replies <= 200000, --timeout <= 600")

    loop_name = use_uvloop()
    info = machine()
    customers = smpp_customers(args.conversations)
    args.conversations = len(customers)
    print(f"{machine_line(info)}  (bench loop: {loop_name})")
    results = []
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - {"drain", "live"}:
        parser.error("--modes: drain and/or live")
    for mode in modes:
        for window in windows:
            for delay in delays:
                results.append(asyncio.run(run_one(window, delay, args, customers, mode)))
                print(f"  {json.dumps(results[-1])}", flush=True)

    summary = table(results, info, args)
    print("\n" + summary)
    write_results(args.output, {
        "benchmark": "smpp_submit", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info, "code": code_line(), "bench_loop": loop_name, "targets": TARGETS,
        "params": params_of(args), "results": results,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
