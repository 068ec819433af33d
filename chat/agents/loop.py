"""Event-loop health: a stall monitor, the collector's pauses, and a collector tuned for a large live heap.

Rules:
- One cleanup context (`loop_health`), appended last in create_app, so it starts after every other
  part has started: the start-up heap it freezes is the whole app.
- The stall monitor sleeps TICK_SECONDS at a time; how much later than asked it wakes is the stall
  (the event loop was busy or the collector ran). Every tick is observed in
  `didchat_event_loop_stall_seconds`; `didchat_event_loop_stall_max_seconds` is the longest of the
  last STALL_WINDOW_SECONDS. Collector passes are timed by generation in `didchat_gc_pause_seconds`.
- Python 3.11's collector walks every tracked object of the oldest generation in one pass: with
  10,000 agent sockets that froze the loop 1.5-2.1 s several times a minute (issue 9). So the
  start-up heap is frozen (`gc.freeze()`: never walked again), the young generation is larger, and
  whatever survives a generation-1 pass is frozen as that pass ends (from the collector's own
  callback: a list splice, no extra walk), so the oldest generation stays nearly empty and the
  collector's passes walk only young objects. Frozen objects are still freed by reference
  counting; only cyclic garbage among them waits, until the process's resident memory has grown
  RECLAIM_GROWTH times since the last reclaim (checked every RECLAIM_CHECK_SECONDS), when one full
  pass over everything runs (unfreeze, collect, freeze): garbage held so is bounded by the live
  heap, and full passes are paid once per doubling of memory, not once per quarter of new
  objects as Python's own rule does (so: while sockets ramp up, never while they are held).
- Nothing here walks the frozen heap while the app runs (`gc.get_freeze_count()` walks it: at
  10,000 sockets that is millions of objects), except a reclaim.
- DIDCHAT_GC_TUNING=off keeps Python's collector as it is (the benchmark's "before"); the
  monitor runs either way.
"""
from __future__ import annotations

import asyncio
import collections
import gc
import os
import resource
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from chat.metrics import METRICS

log = structlog.get_logger()
TICK_SECONDS = 0.05
STALL_WINDOW_SECONDS = 60
RECLAIM_CHECK_SECONDS = 10.0
RECLAIM_GROWTH = 2.0
# gen0 700 -> 50,000: a burst's short-lived objects die before a young collection sees them, so
# fewer are promoted; gen2 is kept at Python's ratio (each full pass walks only the unfrozen heap).
THRESHOLDS = (50_000, 20, 10)
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
STALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def tuning_enabled() -> bool:
    return os.environ.get("DIDCHAT_GC_TUNING", "on").lower() not in ("off", "0", "no")


class LoopHealth:
    """The monitor's metrics and state, registered on one app's registry."""

    def __init__(self, registry) -> None:
        self.stalls = Histogram("didchat_event_loop_stall_seconds", "How late the event loop woke from a short sleep",
                                buckets=STALL_BUCKETS, registry=registry)
        self.gc_pauses = Histogram("didchat_gc_pause_seconds", "Garbage-collection passes, by generation",
                                   ["generation"], buckets=STALL_BUCKETS, registry=registry)
        self.reclaims = Gauge("didchat_gc_reclaims", "Full collections over the frozen heap since start",
                              registry=registry)
        self.reclaimed = Gauge("didchat_gc_reclaimed_objects", "Unreachable objects those full collections freed",
                               registry=registry)
        self.longest_cpu: dict[int, float] = {}  # generation -> the CPU time of its longest pass
        self.recent: collections.deque[tuple[int, float]] = collections.deque()  # (second, longest stall in it)
        self.tuned = False
        self._gc_started: tuple[float, float] | None = None  # (wall, thread CPU) at a pass's start
        self.rss_after_reclaim = 0
        registry.register(self)

    def collect(self):
        """Read at each scrape: the longest recent stall, the frozen heap."""
        yield GaugeMetricFamily("didchat_event_loop_stall_max_seconds",
                                f"Longest event-loop stall of the last {STALL_WINDOW_SECONDS} s", value=self.longest())
        longest = GaugeMetricFamily("didchat_gc_longest_pass_cpu_seconds",
                                    "CPU time of the longest collector pass since start, by generation (wall time "
                                    "above it is time the process waited for a core)", labels=["generation"])
        for generation, seconds in sorted(self.longest_cpu.items()):
            longest.add_metric([str(generation)], seconds)
        yield longest
        yield GaugeMetricFamily("didchat_gc_tuned", "1 when the collector is tuned and the heap frozen",
                                value=int(self.tuned))

    def stalled(self, seconds: float) -> None:
        self.stalls.observe(seconds)
        now = int(time.monotonic())
        if self.recent and self.recent[-1][0] == now:
            self.recent[-1] = (now, max(seconds, self.recent[-1][1]))
        else:
            self.recent.append((now, seconds))
        while self.recent and self.recent[0][0] <= now - STALL_WINDOW_SECONDS:
            self.recent.popleft()

    def longest(self) -> float:
        now = int(time.monotonic())
        return max((s for second, s in self.recent if second > now - STALL_WINDOW_SECONDS), default=0.0)

    def on_gc(self, phase: str, info: dict) -> None:
        """gc.callbacks: time each pass."""
        if phase == "start":
            self._gc_started = (time.perf_counter(), time.thread_time())
        elif self._gc_started is not None:
            wall, cpu = self._gc_started
            generation = info.get("generation", -1)
            self.gc_pauses.labels(str(generation)).observe(time.perf_counter() - wall)
            self.longest_cpu[generation] = max(self.longest_cpu.get(generation, 0.0), time.thread_time() - cpu)
            self._gc_started = None
            if self.tuned and generation >= 1:
                gc.freeze()  # the survivors of this pass join the frozen heap

    def tune(self) -> None:
        """Freeze the start-up heap and set the thresholds."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
        self.rss_after_reclaim = rss_bytes()
        self.tuned = True
        log.info("gc.tuned", frozen=gc.get_freeze_count(), thresholds=THRESHOLDS)

    def check(self) -> None:
        """A full reclaim once memory grew enough."""
        if rss_bytes() >= RECLAIM_GROWTH * max(self.rss_after_reclaim, 1):
            self.reclaim()

    def reclaim(self) -> None:
        """One full pass over everything, frozen included (cyclic garbage among frozen objects is freed)."""
        started = time.perf_counter()
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        self.rss_after_reclaim = rss_bytes()
        self.reclaims.inc()
        self.reclaimed.inc(freed)
        log.info("gc.reclaimed", freed=freed, rss=self.rss_after_reclaim, seconds=round(time.perf_counter() - started, 3))


def rss_bytes() -> int:
    """This process's resident memory now (Linux), or its peak where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def watch(health: LoopHealth) -> None:
    """Sleep a tick at a time, observing how late each wake-up is; see whether a reclaim is due now and then."""
    loop = asyncio.get_running_loop()
    next_check = loop.time() + RECLAIM_CHECK_SECONDS
    while True:
        asked = loop.time()
        await asyncio.sleep(TICK_SECONDS)
        woke = loop.time()
        health.stalled(max(0.0, woke - asked - TICK_SECONDS))
        if health.tuned and woke >= next_check:
            health.check()
            next_check = woke + RECLAIM_CHECK_SECONDS


async def loop_health(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: tune the collector (unless DIDCHAT_GC_TUNING=off) and watch the loop."""
    health = LoopHealth(app[METRICS].registry)
    app[LOOP_HEALTH] = health
    gc.callbacks.append(health.on_gc)
    defaults = gc.get_threshold()
    if tuning_enabled():
        health.tune()
    task = asyncio.create_task(watch(health), name="loop-health")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.callbacks.remove(health.on_gc)
        app[METRICS].registry.unregister(health)
        if health.tuned:  # the process may go on (tests build many apps in one)
            gc.set_threshold(*defaults)
            gc.unfreeze()


LOOP_HEALTH = web.AppKey("loop_health", LoopHealth)
