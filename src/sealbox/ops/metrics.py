"""Prometheus metrics.

Two sources, so that every figure is right however many processes and machines run:
- request-time counts (requests, latencies, unlocks, uploads) live in process memory,
  shared between gunicorn's worker processes through prometheus-client's multi-process
  directory (`serve` sets PROMETHEUS_MULTIPROC_DIR); each app server reports its own;
- queue, worker, audit and background counts (emails, SMS, purges) are read from the
  database at scrape time: the same on every app server, wherever the work ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter("sealbox_http_requests", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "sealbox_http_request_duration_seconds",
    "Time to answer an HTTP request (to the first byte of a streamed answer)",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UNLOCKS = Counter("sealbox_unlocks", "Recipient unlock attempts", ["outcome"])
UPLOADED_CHUNKS = Counter("sealbox_upload_chunks", "Ciphertext chunks stored")
UPLOADED_BYTES = Counter("sealbox_upload_bytes", "Ciphertext bytes stored")

CONTENT_TYPE = CONTENT_TYPE_LATEST


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    REQUEST_SECONDS.labels(route=route).observe(seconds)


class DatabaseCollector(Collector):
    """Figures read from the database when scraped."""

    def collect(self) -> Iterator:
        # Imported when scraped, not at the top: `sealbox serve` imports this module
        # (forget_process) in the server's process hooks, before Django is set up.
        from django.db.models import Count, Max
        from django_tasks_db.models import DBTaskResult

        from sealbox.audit.models import Event
        from sealbox.ops import services
        from sealbox.ops.models import EventCounter

        tasks = GaugeMetricFamily("sealbox_tasks", "Background tasks by state", labels=["state"])
        by_status = dict(
            DBTaskResult.objects.values_list("status").annotate(n=Count("id")).order_by()
        )
        for state in ("READY", "RUNNING", "FAILED", "SUCCESSFUL"):
            tasks.add_metric([state.lower()], by_status.get(state, 0))
        yield tasks
        age = services.oldest_ready_task_age()
        yield GaugeMetricFamily(
            "sealbox_task_oldest_ready_age_seconds",
            "Age of the oldest task waiting for a worker (0 when none waits)",
            value=age.total_seconds() if age else 0,
        )
        yield GaugeMetricFamily(
            "sealbox_workers_alive",
            "Workers with a recent heartbeat",
            value=services.live_workers(),
        )
        yield GaugeMetricFamily(
            "sealbox_audit_events",
            "Events in the audit chains (highest event id)",
            value=Event.objects.aggregate(n=Max("id"))["n"] or 0,
        )
        background = CounterMetricFamily(
            "sealbox_background", "Background work done, cluster-wide", labels=["what"]
        )
        for name, value in EventCounter.objects.values_list("name", "value"):
            background.add_metric([name], value)
        yield background


def render() -> bytes:
    registry = CollectorRegistry()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (REQUESTS, REQUEST_SECONDS, UNLOCKS, UPLOADED_CHUNKS, UPLOADED_BYTES):
            registry.register(collector)
    registry.register(DatabaseCollector())
    return generate_latest(registry)


def forget_process(pid: int) -> None:
    """A gunicorn worker ended: drop its live gauges (counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
