"""The operator's metrics: one registry per app, scraped at /metrics in Prometheus' text format.

Rules:
- No module-level metric: each app has its own `Metrics` (several apps share a test process).
- Labels are connector names, outcomes, statuses and presence states, nothing else: never a
  phone number, a user name or a message's text, so a scrape leaks nothing and stays small.
  A connector name comes from the configuration, never from a request's path.
- Live state (SMPP links, the router's backlog, presence) is read at scrape time, never copied;
  queue depths are one cheap query each, at scrape time.
"""
from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from chat.store import as_utc, utcnow

INBOUND = ("stored", "duplicate", "refused", "failed")
OUTBOUND = ("sent", "failed", "retried")
# Seconds; a push or an acknowledgement is milliseconds when all is well and seconds when not.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes, and what every Prometheus reads


class Metrics:
    """Every metric of one app, in its own registry."""

    def __init__(self, connectors: Sequence[str]) -> None:
        self.connectors = frozenset(connectors)  # the ones running: set again when they change
        self.registry = CollectorRegistry()
        self.inbound_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.outbound_total = Counter("didchat_outbound_messages", "Agent messages handed to a provider, by outcome",
                                      ["connector", "outcome"], registry=self.registry)
        self.push_latency = Histogram("didchat_push_latency_seconds",
                                      "From an inbound message's commit to its push to the agent (waits for an agent included)",
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ack_latency = Histogram("didchat_webhook_ack_seconds", "From a webhook's arrival to its answer (after the commit)",
                                     ["connector", "kind"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("didchat_queue_depth", "Rows waiting in a worker's queue", ["queue"], registry=self.registry)
        self.queue_age = Gauge("didchat_queue_oldest_age_seconds", "Age of the oldest row waiting in a worker's queue",
                               ["queue"], registry=self.registry)

    def webhook(self, connector: str, what: str, outcome: str) -> None:
        """Count one webhook's outcome (stored, duplicate, refused, failed) if it carried a message
        (`what`: message or status; a status callback is no inbound message)."""
        if connector in self.connectors and what == "message":
            self.inbound_counts[connector, outcome] += 1

    def outbound(self, connector: str, outcome: str) -> None:
        """Count one send attempt's outcome (sent, failed, retried)."""
        if connector in self.connectors:
            self.outbound_total.labels(connector, outcome).inc()

    def pushed(self, event: str, payload) -> None:
        """Time the inbound messages of one push from their commit."""
        items = (payload,) if event == "message" else payload if event == "messages" else ()
        now = time.time()
        for item in items:
            if isinstance(item, dict) and item.get("direction") == "in" and item.get("created_at"):
                self.push_latency.observe(max(0.0, now - datetime.fromisoformat(item["created_at"]).timestamp()))

    def acknowledged(self, connector: str, kind: str, seconds: float) -> None:
        """Time one webhook from its arrival to its answer."""
        if connector in self.connectors:
            self.ack_latency.labels(connector, kind).observe(seconds)

    def queue(self, name: str, depth: int, oldest: datetime | None) -> None:
        """A worker queue's depth and the age of its oldest row, as just read."""
        self.queue_depth.labels(name).set(depth)
        when = as_utc(oldest)
        age = 0.0 if when is None else (utcnow() - when).total_seconds()
        self.queue_age.labels(name).set(max(0.0, age))

    @contextlib.contextmanager
    def watching(self, live: Live) -> Iterator[None]:
        """Read `live` at every scrape while the app's parts run."""
        self.registry.register(live)
        try:
            yield
        finally:
            self.registry.unregister(live)

    def text(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)
LINKS = web.AppKey("smpp_links", list)  # the running chat.connectors.smpp.SmppConnection objects, for the operator's views


@dataclass(frozen=True, eq=False)  # a registry keys its collectors by identity
class Live:
    """A collector of what the app is doing now: its parts, read at each scrape."""

    metrics: Metrics
    # chat.connectors.smpp.SmppConnection, each with metrics() -> {state, window, in_flight, throttled,
    # deliver_sm_resp: {status name: n}, submit_sm_resp: {status name: n}, inbound: {outcome: n}}
    links: Sequence
    router: object  # chat.workers.routing.Router, with backlog() -> (messages, oldest age in seconds)
    presence: object  # chat.workers.presence.Presence
    login_failures: Callable[[], Mapping[str, int]] | None = None  # failed logins by reason
    commit: object | None = None  # chat.store.commit.GroupCommit, with batches and units committed

    def collect(self):
        smpp = {link.cfg.name: link.metrics() for link in self.links}
        yield self._inbound(smpp)
        yield from smpp_families(smpp)
        yield from routing_families(self.router)
        agents = GaugeMetricFamily("didchat_agents_connected", "Agents connected now, by presence", labels=["presence"])
        for state, n in self.presence.counts().items():
            agents.add_metric([state], n)
        yield agents
        if self.commit is not None:
            yield CounterMetricFamily("didchat_store_batches", "Write transactions committed by the group commit",
                                      value=self.commit.batches)
            yield CounterMetricFamily("didchat_store_batch_units", "Write units those transactions held (over batches: how full they are)",
                                      value=self.commit.units)
        if self.login_failures is not None:
            failures = CounterMetricFamily("didchat_login_failures", "Failed logins, by reason", labels=["reason"])
            for reason, n in sorted(self.login_failures().items()):
                failures.add_metric([reason], n)
            yield failures

    def _inbound(self, smpp: dict[str, dict]) -> CounterMetricFamily:
        family = CounterMetricFamily("didchat_inbound_messages", "Inbound messages by connector and outcome",
                                     labels=["connector", "outcome"])
        counts = collections.Counter(self.metrics.inbound_counts)
        for name, values in smpp.items():
            counts.update({(name, outcome): n for outcome, n in (values.get("inbound") or {}).items()})
        for name in sorted(self.metrics.connectors):
            for outcome in INBOUND:
                family.add_metric([name, outcome], counts[name, outcome])
        return family


def smpp_families(smpp: dict[str, dict]):
    """The SMPP links' bind state, window, statuses and throttles."""
    bound = GaugeMetricFamily("didchat_smpp_bound", "1 while the SMPP connector is bound", labels=["connector"])
    standby = GaugeMetricFamily("didchat_smpp_standby", "1 while another node holds the SMPP connector's bind", labels=["connector"])
    window = GaugeMetricFamily("didchat_smpp_window", "Requests the SMPP window allows in flight", labels=["connector"])
    in_flight = GaugeMetricFamily("didchat_smpp_in_flight", "Requests in flight (window in use)", labels=["connector"])
    throttled = CounterMetricFamily("didchat_smpp_throttled", "ESME_RTHROTTLED answers from the SMSC", labels=["connector"])
    resp = {name: CounterMetricFamily(f"didchat_smpp_{name}", f"{name} statuses", labels=["connector", "status"])
            for name in ("deliver_sm_resp", "submit_sm_resp")}
    for name, values in smpp.items():
        bound.add_metric([name], 1 if values.get("state") == "bound" else 0)
        standby.add_metric([name], 1 if values.get("state") == "standby" else 0)
        window.add_metric([name], values.get("window", 0))
        in_flight.add_metric([name], values.get("in_flight", 0))
        throttled.add_metric([name], values.get("throttled", 0))
        for kind, family in resp.items():
            for status, n in (values.get(kind) or {}).items():
                family.add_metric([name, str(status)], n)
    yield from (bound, standby, window, in_flight, throttled, *resp.values())


def routing_families(router):
    """Stored but not yet routed: how many, and for how long the oldest has waited."""
    waiting, age = router.backlog()
    return (GaugeMetricFamily("didchat_routing_backlog", "Stored messages not yet routed", value=waiting),
            GaugeMetricFamily("didchat_routing_lag_seconds", "Age of the oldest stored message not yet routed", value=age))
