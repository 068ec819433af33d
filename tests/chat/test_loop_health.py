"""Event-loop health (chat.agents.loop): the stall monitor reports, the collector is tuned and the
start-up heap frozen once the app runs, and the tuning is undone when the app stops (both databases)."""
from __future__ import annotations

import gc
import weakref

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chat.agents import loop
from chat.agents.loop import LOOP_HEALTH, THRESHOLDS
from tests.conftest import until


async def scrape(server) -> dict[str, dict[tuple, float]]:
    """name -> {sorted labels: value} of every sample of /metrics."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/metrics") as answer:
            assert answer.status == 200
            text = await answer.text()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


@pytest.fixture(autouse=True)
def tuning_on(monkeypatch):
    """As in production (tests/conftest.py turns the tuning off for the test process's other apps)."""
    monkeypatch.setenv("DIDCHAT_GC_TUNING", "on")


def health(server) -> loop.LoopHealth:
    return server.runner.app[LOOP_HEALTH]


async def test_the_stall_monitor_reports_on_metrics(didchat_server):
    await until(lambda: health(didchat_server).stalls._sum.get() > 0 or len(health(didchat_server).recent) > 2,
                timeout=5, what="a few ticks")
    samples = await scrape(didchat_server)
    assert samples["didchat_event_loop_stall_seconds_count"][()] >= 1
    assert ((("le", "0.1"),) in samples["didchat_event_loop_stall_seconds_bucket"])
    assert samples["didchat_event_loop_stall_max_seconds"][()] >= 0
    assert samples["didchat_gc_tuned"][()] == 1


async def test_a_stall_is_seen_by_the_monitor(didchat_server):
    import time

    time.sleep(0.3)  # a handler that blocks the loop: what the monitor is for
    await until(lambda: health(didchat_server).longest() >= 0.25, timeout=5, what="the stall recorded")
    samples = await scrape(didchat_server)
    assert samples["didchat_event_loop_stall_max_seconds"][()] >= 0.25


async def test_the_heap_is_frozen_and_the_collector_tuned_after_start_up(didchat_server):
    assert health(didchat_server).tuned
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 10_000  # the imported app, at least
    assert health(didchat_server).rss_after_reclaim > 0


async def test_collector_passes_are_timed_by_generation(didchat_server):
    gc.collect(0)
    samples = await scrape(didchat_server)
    assert samples["didchat_gc_pause_seconds_count"][(("generation", "0"),)] >= 1
    assert samples["didchat_gc_longest_pass_cpu_seconds"][(("generation", "0"),)] >= 0


class Node:
    """Something that can sit in a reference cycle and be watched through a weak reference."""

    me: Node


async def test_survivors_are_frozen_and_a_grown_heap_reclaimed(didchat_server):
    watched = health(didchat_server)
    before = gc.get_freeze_count()
    kept = [[i] for i in range(1000)]  # long-lived objects born after start-up
    gc.collect(1)  # what survives a generation-1 pass is frozen as it ends
    assert gc.get_freeze_count() >= before + 1000
    assert gc.get_count()[2] == 0
    cycle = Node()
    cycle.me = cycle
    gone = weakref.ref(cycle)
    gc.collect(1)
    del cycle
    gc.collect(1)
    assert gone() is not None  # cyclic garbage, once frozen, waits for a reclaim
    watched.check()
    assert gone() is not None  # memory has not grown enough for one
    watched.rss_after_reclaim = loop.rss_bytes() // 2  # as if it had doubled since the last
    watched.check()
    assert gone() is None
    samples = await scrape(didchat_server)
    assert samples["didchat_gc_reclaims"][()] == 1
    assert samples["didchat_gc_reclaimed_objects"][()] >= 1
    assert len(kept) == 1000


async def test_tuning_off_keeps_the_collector_as_it_is(make_server, monkeypatch):
    monkeypatch.setenv("DIDCHAT_GC_TUNING", "off")
    defaults, frozen = gc.get_threshold(), gc.get_freeze_count()
    server = await make_server()
    assert not health(server).tuned
    assert gc.get_threshold() == defaults
    assert gc.get_freeze_count() == frozen
    samples = await scrape(server)
    assert samples["didchat_gc_tuned"][()] == 0


async def test_stopping_the_app_undoes_the_tuning(make_server):
    defaults = gc.get_threshold()
    server = await make_server()
    assert gc.get_threshold() == THRESHOLDS
    await server.stop()
    assert gc.get_threshold() == defaults
    assert gc.get_freeze_count() == 0
