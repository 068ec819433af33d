"""didchat against Kannel: the same SMSC, the same MO burst, end to end, side by side (issue 14).

Who asks: SMSC operators, who measure an ESME by how fast it answers deliver_sm under a burst, and know
Kannel. Each side binds as a transceiver to its own tests.fakes.smsc.TestSmsc (the same code and settings)
in this process, and gets the same deliver_sm: --messages single-part GSM texts `bench <n>` from --senders
customer numbers to one number, at most --window unanswered, PDUs encoded before the clock (the
smpp_ingest raw driver).

- Kannel: Debian's `kannel` (installed here with apt-get if bearerbox is missing), bearerbox with one
  SMPP transceiver and smsbox forwarding every MO with an sms-service get-url to a sink in this process
  (a minimal keep-alive HTTP/1.1 server). End to end = MOs reaching the sink per second. Kannel answers
  deliver_sm when the MO is in bearerbox's memory queue, before smsbox forwards it; with no store
  configured (as here: Kannel's default) a crash loses what is queued.
- didchat: `didchat run` on each --database-url (smpp_ingest's SmppIngest: one SMPP connector, the agent
  alice connected over Socket.IO). End to end = pushes reaching alice per second. didchat answers
  deliver_sm after the commit: what was acknowledged survives kill -9.

All sides are up at once and measured round by round (Kannel, then each didchat target), so that each
round meets the same moment of a shared machine; ratios are per round, their median over --repeat rounds.

    .venv/bin/python bench/vs_kannel.py                          # 30,000 MOs, window 100, 3 rounds, SQLite and PostgreSQL
    .venv/bin/python bench/vs_kannel.py --messages 10000 --repeat 1 --database-url sqlite
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nodes  # noqa: E402
from common import (  # noqa: E402
    RESULTS_DIR,
    code_line,
    free_port,
    latency_summary,
    machine,
    machine_line,
    params_of,
    proc_cpu_seconds,
    remove_dir,
    smpp_customers,
    use_uvloop,
    write_results,
)
from smpp_ingest import WARM_UP, Driver, Mo, SmppIngest, phase_max  # noqa: E402

from gateway.smpp.pdu import ESME_ROK  # noqa: E402
from tests.fakes.smsc import TestSmsc  # noqa: E402

RESULTS = RESULTS_DIR / "vs_kannel.json"
TARGETS = {"sqlite": 1.0, "postgresql": 0.8, "p99": 1.5}  # x Kannel's end-to-end rate; x Kannel's deliver_sm_resp p99
ACKS = {"kannel": "deliver_sm_resp once the MO is in bearerbox's memory queue (no store): lost on a crash",
        "didchat": "deliver_sm_resp after the commit: kept through kill -9"}
START_SECONDS = 30.0


# ---------------------------------------------------------------- Kannel

def ensure_kannel() -> str:
    """bearerbox's path, installing Debian's kannel first if it is missing (its own service is not started)."""
    found = shutil.which("bearerbox") or ("/usr/sbin/bearerbox" if os.path.exists("/usr/sbin/bearerbox") else None)
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("Kannel is not installed: run `sudo apt-get install kannel`, then this again")
    print("installing Debian's kannel ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")  # RUNLEVEL 1: invoke-rc.d starts nothing
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "kannel"], check=True, env=env, stdout=subprocess.DEVNULL)
    for name in ("bearerbox", "smsbox"):  # a package that started its service would hold ports of its own
        subprocess.run(["pkill", "-x", name], check=False)
    return "/usr/sbin/bearerbox"


def kannel_conf(folder: Path, smsc_port: int, sink_port: int, window: int) -> tuple[str, dict[str, int]]:
    """bearerbox + smsbox: one SMPP transceiver to the test SMSC, every MO to the sink, nothing stored."""
    ports = {name: free_port() for name in ("admin", "smsbox", "sendsms")}
    return f"""\
group = core
admin-port = {ports["admin"]}
admin-password = bench
admin-interface = 127.0.0.1
smsbox-port = {ports["smsbox"]}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
admin-allow-ip = 127.0.0.1
log-file = "{folder}/bearerbox.log"
log-level = 2
sms-incoming-queue-limit = -1

group = smsc
smsc = smpp
smsc-id = bench
host = 127.0.0.1
port = {smsc_port}
transceiver-mode = true
smsc-username = esme
smsc-password = secret
system-type = ""
max-pending-submits = {window}
enquire-link-interval = 30
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {ports["smsbox"]}
sendsms-port = {ports["sendsms"]}
sendsms-interface = 127.0.0.1
log-file = "{folder}/smsbox.log"
log-level = 2
max-pending-requests = 512

group = sms-service
keyword = default
catch-all = true
max-messages = 0
omit-empty = true
get-url = "http://127.0.0.1:{sink_port}/mo?from=%p&to=%P&text=%a"
""", ports


class Sink(asyncio.Protocol):
    """smsbox's get-url requests, read as cheaply as possible (this process also drives the SMSC): the
    request line's text names the MO; every request is answered 200 with no body, on a kept connection."""

    def __init__(self, received: dict[int, float]):
        self.received, self.buffer = received, b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            target = head.split(b" ", 2)[1].decode("latin-1")
            text = parse_qs(target.partition("?")[2]).get("text", [""])[0]
            if text.startswith("bench "):
                self.received.setdefault(int(text[6:]), time.perf_counter())
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


class KannelSide:
    """Kannel bound to its own TestSmsc, forwarding to the sink: started, warmed, run, stopped like a target."""

    label = "Kannel 1.4.5"

    def __init__(self, args, bearerbox: str):
        self.args, self.bearerbox = args, bearerbox
        self.senders = smpp_customers(args.senders)
        self.received: dict[int, float] = {}
        self.runs: list[dict] = []
        self.procs: list[subprocess.Popen] = []
        self.dir = Path(tempfile.mkdtemp(prefix="didchat-bench-kannel-"))

    async def start(self) -> None:
        self.smsc = await TestSmsc("esme", "secret", window=self.args.window, id_format="hex").start()
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Sink(self.received), "127.0.0.1", 0)
        sink_port = self.server.sockets[0].getsockname()[1]
        conf, _ = kannel_conf(self.dir, self.smsc.port, sink_port, self.args.window)
        (self.dir / "kannel.conf").write_text(conf)
        smsbox = str(Path(self.bearerbox).with_name("smsbox"))
        for program in (self.bearerbox, smsbox):
            log = open(self.dir / f"{Path(program).name}.out", "wb")  # noqa: SIM115 - closed with the process
            self.procs.append(subprocess.Popen([program, str(self.dir / "kannel.conf")], stdout=log, stderr=log))
            await asyncio.sleep(0.5)  # smsbox connects to bearerbox's smsbox-port: bearerbox first
        print(f"{self.label}: {self.dir} (pids {[p.pid for p in self.procs]})", flush=True)
        await self.smsc.wait_for_sessions(1, timeout=START_SECONDS)
        warm = [Mo(WARM_UP + i, s) for i, s in enumerate(self.senders)]
        await self._send(warm)

    async def _send(self, mos: list[Mo]) -> float:
        driver = Driver(self.smsc, self.args.window, "raw", self.args.response_timeout)
        driver.prepare(mos)
        t0 = await phase_max(driver, mos)
        wanted = {m.n for m in mos if m.status == ESME_ROK}
        deadline = time.perf_counter() + self.args.drain_timeout
        while not wanted <= self.received.keys() and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return t0

    async def run(self, index: int) -> dict:
        count = self.args.messages
        mos = [Mo(n, self.senders[n % len(self.senders)]) for n in range(index * count, (index + 1) * count)]
        cpu0 = [proc_cpu_seconds(p.pid) or 0.0 for p in self.procs]
        t0 = await self._send(mos)
        cpu = sum((proc_cpu_seconds(p.pid) or 0.0) - c for p, c in zip(self.procs, cpu0, strict=True))
        ok = [m for m in mos if m.status == ESME_ROK]
        arrived = [m for m in ok if m.n in self.received]
        last = max((self.received[m.n] for m in arrived), default=t0)
        result = {
            "sent": len(mos), "rok": len(ok), "not_rok": len(mos) - len(ok), "missing": len(ok) - len(arrived),
            "durable_msgs_per_s": round(len(ok) / max(1e-9, max((m.answered for m in ok), default=t0) - t0), 1),
            "delivered_msgs_per_s": round(len(arrived) / max(1e-9, last - t0), 1),
            "rok_ms": latency_summary([m.answered - m.sent for m in ok]),
            "latency_ms": latency_summary([self.received[m.n] - m.sent for m in arrived]),
            "cpu_ms_per_msg": round(1000 * cpu / max(1, len(arrived)), 3),
        }
        self.runs.append(result)
        print(f"  {self.label} run {index + 1}: {line(result)}", flush=True)
        return result

    async def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if hasattr(self, "server"):
            self.server.close()
        if hasattr(self, "smsc"):
            await self.smsc.stop()
        if not self.args.keep:
            remove_dir(self.dir)


# ---------------------------------------------------------------- the rounds and the table

def line(r: dict) -> str:
    return (f"{r['delivered_msgs_per_s']} msg/s end to end, deliver_sm_resp {r['durable_msgs_per_s']} /s "
            f"p99 {r['rok_ms']['p99']} ms, to the far end p99 {r['latency_ms']['p99']} ms")


def didchat_result(run: dict) -> dict:
    """smpp_ingest's run, in this table's terms (missing = acknowledged but not pushed)."""
    return {"sent": run["sent"], "rok": run["rok"], "not_rok": sum(run["not_rok"].values()),
            "missing": run["missing_pushes"], "durable_msgs_per_s": run["durable_msgs_per_s"],
            "delivered_msgs_per_s": run["delivered_msgs_per_s"], "rok_ms": run["rok_ms"],
            "latency_ms": run["latency_ms"], "cpu_ms_per_msg": run["node_cpu_ms_per_msg"]}


async def measure(args, bearerbox: str) -> tuple[list[dict], list[dict]]:
    kannel = KannelSide(args, bearerbox)
    started: list[nodes.Measured] = []
    try:
        await kannel.start()
        for target in nodes.targets(args.database_urls, [1]):
            await nodes.start(target, SmppIngest(target, args), args, started)
        for index in range(args.repeat):
            await kannel.run(index)
            for m in started:
                await nodes.run_once(m, index)
        return kannel.runs, [m.result() for m in started]
    finally:
        await nodes.stop(started)
        await kannel.stop()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(kannel: list[dict], didchat: list[dict]) -> tuple[str, list[str]]:
    sides = [("Kannel 1.4.5", kannel, "kannel")] + [
        (f"didchat, {r['target']}", [didchat_result(run) for run in r["runs"]], r["database"]) for r in didchat]
    rows = [("", *(name for name, _, _ in sides))]
    for title, key in (("end to end msg/s", "delivered_msgs_per_s"), ("deliver_sm_resp /s", "durable_msgs_per_s")):
        rows.append((title, *(f"{median([r[key] for r in runs]):,.0f}" for _, runs, _ in sides)))
    for title, key in (("deliver_sm_resp p99 ms", "rok_ms"), ("deliver_sm -> far end p99 ms", "latency_ms")):
        rows.append((title, *(f"{median([r[key]['p99'] for r in runs]):.1f}" for _, runs, _ in sides)))
    rows.append(("CPU a message (its processes)", *(f"{median([r['cpu_ms_per_msg'] for r in runs]) * 1000:.0f} us"
                                                    for _, runs, _ in sides)))
    rows.append(("not ROK / acked not delivered", *(f"{sum(r['not_rok'] for r in runs)} / {sum(r['missing'] for r in runs)}"
                                                    for _, runs, _ in sides)))
    verdicts = []
    rate_ratios, p99_ratios = [], []
    for name, runs, kind in sides[1:]:
        rate = median([r["delivered_msgs_per_s"] / k["delivered_msgs_per_s"] for r, k in zip(runs, kannel, strict=True)])
        p99 = median([r["rok_ms"]["p99"] / k["rok_ms"]["p99"] for r, k in zip(runs, kannel, strict=True)])
        rate_ratios.append(f"x{rate:.2f}")
        p99_ratios.append(f"x{p99:.2f}")
        wanted = TARGETS["sqlite"] if kind == "sqlite" else TARGETS["postgresql"]
        met = rate >= wanted and p99 <= TARGETS["p99"] and not any(r["missing"] or r["not_rok"] for r in runs)
        verdicts.append(f"{name}: end to end >= {wanted:g} x Kannel's and deliver_sm_resp p99 <= "
                        f"{TARGETS['p99']:g} x Kannel's (medians of per-round ratios): {'MET' if met else 'NOT MET'}")
    rows.append(("end to end x Kannel (per round)", "", *rate_ratios))
    rows.append(("deliver_sm_resp p99 x Kannel", "", *p99_ratios))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    text = "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))) for row in rows)
    return text, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    nodes.add_arguments(parser, messages=30000)
    parser.add_argument("--window", type=int, default=100, help="deliver_sm in flight at each SMSC (and didchat's window)")
    parser.add_argument("--senders", type=int, default=100, help="distinct customer numbers")
    parser.add_argument("--response-timeout", type=float, default=30.0, help="per deliver_sm")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="wait for what was acknowledged to arrive")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.set_defaults(repeat=3)
    args = parser.parse_args()
    nodes.check_arguments(parser, args)
    args.driver, args.rate = "raw", 0.0  # what SmppIngest reads
    bearerbox = ensure_kannel()
    loop_name = use_uvloop()
    info = machine()
    print(f"{machine_line(info)}  (bench loop: {loop_name})\n{code_line()}", flush=True)
    kannel, didchat = asyncio.run(measure(args, bearerbox))
    text, verdicts = table(kannel, didchat)
    summary = (f"{machine_line(info)}\n{code_line()}\n{args.messages} single-part MOs a round from {args.senders} "
               f"senders, window {args.window}, {args.repeat} rounds; medians over the rounds\n"
               f"acknowledgement: Kannel {ACKS['kannel']}; didchat {ACKS['didchat']}\n\n{text}\n\n" + "\n".join(verdicts))
    print("\n" + summary)
    write_results(args.output, {
        "benchmark": "vs_kannel", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": info,
        "code": code_line(), "params": params_of(args), "targets": TARGETS, "acknowledgement": ACKS,
        "kannel": kannel, "didchat": didchat,
    })
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
