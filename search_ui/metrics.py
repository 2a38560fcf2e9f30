"""/metrics in the Prometheus text format (prometheus_client): requests and latency per
route, searches per mode, and the ingest ledger's files per state and queue length."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily


class Metrics:
    def __init__(self, ledger: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vidx_http_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("vidx_http_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.searches = Counter("vidx_searches", "Searches", ["mode"], registry=self.registry)
        self.registry.register(_LedgerCollector(ledger))


class _LedgerCollector:
    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    def collect(self) -> Any:
        try:
            counts = self.ledger.summary()
        except Exception:  # an unreadable ledger: no ingest figures rather than a failed scrape
            counts = None
        files = GaugeMetricFamily("vidx_ingest_files", "Watched files per state", labels=["state"])
        queue = GaugeMetricFamily("vidx_ingest_queue", "Videos waiting or being analysed")
        if counts is not None:
            for state in ("pending", "processing", "done", "failed"):
                files.add_metric([state], counts.get(state, 0))
            queue.add_metric([], counts.get("pending", 0) + counts.get("processing", 0))
        yield files
        yield queue
