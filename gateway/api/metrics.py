"""Prometheus metrics for `GET /metrics`: read from the database at scrape time where possible.

Invariants:
- What the database knows (jobs by state, fetch durations and sizes, stored instances, the
  review queue) is read when Prometheus scrapes, so every process sharing a database reports
  the same numbers and a restart loses nothing. Histograms of fetches cover the newest
  FETCH_WINDOW finished fetch jobs.
- What only this process sees (association failures and C-ECHO round trips by PACS, from
  `pacs.observe`; SQS commands by type and the last complete bulk upload, from
  `r4.observe`) lives in process-wide metrics since start.
- Labels are PACS names, job states and kinds: never patient data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.core.models import instance
from gateway.fetch.job import FETCH_KIND
from gateway.review import ReviewState
from gateway.service import Gateway
from pacs import observe
from r4 import observe as r4_observe

PREFIX = "pacs_gateway"
FETCH_WINDOW = 10_000
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
BYTES_BUCKETS = tuple(float(mb * 1024 * 1024) for mb in (1, 10, 50, 100, 250, 500, 1000, 2500))
ECHO_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_live = CollectorRegistry(auto_describe=True)
ASSOCIATION_FAILURES = Counter(
    f"{PREFIX}_association_failures",
    "Associations to a PACS that were refused or could not be opened, since start.",
    ["pacs"],
    registry=_live,
)
ECHO_SECONDS = Histogram(
    f"{PREFIX}_echo_seconds",
    "C-ECHO round trip (association + echo) by PACS, since start.",
    ["pacs"],
    buckets=ECHO_BUCKETS,
    registry=_live,
)
SQS_MESSAGES = Counter(
    f"{PREFIX}_sqs_messages",
    "SQS commands from Flynotes by type and outcome (done, failed, interrupted, refused).",
    ["type", "outcome"],
    registry=_live,
)
LAST_BULK_UPLOAD = Gauge(
    f"{PREFIX}_last_bulk_upload_timestamp_seconds",
    "Unix time of the last complete bulk upload of R4 patients to Flynotes (0: none since start).",
    registry=_live,
)
r4_observe.on_command_handled(lambda kind, outcome: SQS_MESSAGES.labels(kind, outcome).inc())
r4_observe.on_bulk_uploaded(lambda at, _patients: LAST_BULK_UPLOAD.set(at))
observe.on_association_failed(lambda pacs: ASSOCIATION_FAILURES.labels(pacs).inc())
observe.on_echo_answered(lambda pacs, seconds: ECHO_SECONDS.labels(pacs).observe(seconds))


class DatabaseCollector(Collector):
    """Metrics read from the gateway's database when scraped."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterable[Metric]:
        jobs_by_state = GaugeMetricFamily(
            f"{PREFIX}_jobs", "Jobs in the database by state.", labels=["state"]
        )
        for state, count in self.gateway.jobs.counts().items():
            jobs_by_state.add_metric([state.value], count)
        yield jobs_by_state

        runs = self.gateway.jobs.finished_runs(FETCH_KIND, FETCH_WINDOW)
        yield _histogram(
            f"{PREFIX}_fetch_duration_seconds",
            "Start to finish of the newest finished fetch jobs, by final state.",
            DURATION_BUCKETS,
            [(state, seconds) for state, seconds, _ in runs],
        )
        yield _histogram(
            f"{PREFIX}_fetch_bytes",
            "Bytes received by the newest finished fetch jobs, by final state.",
            BYTES_BUCKETS,
            [(state, float(progress.get("bytes") or 0)) for state, _, progress in runs],
        )

        with self.gateway.engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(instance)).scalar()
        yield GaugeMetricFamily(
            f"{PREFIX}_instances_stored",
            "Instances received and indexed in the store.",
            value=int(stored or 0),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_review_queue_open",
            "Review items waiting for staff.",
            value=self.gateway.review.count(ReviewState.OPEN),
        )
        figures = self.gateway.retention.figures()
        yield GaugeMetricFamily(
            f"{PREFIX}_storage_used_bytes",
            "Bytes the indexed studies take in the store.",
            value=figures.used_bytes,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_storage_free_bytes",
            "Free bytes on the disk that holds the store.",
            value=figures.free_bytes,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_storage_min_free_bytes",
            "Free bytes the gateway keeps on that disk (storage_min_free_gb).",
            value=figures.limits.min_free_bytes,
        )
        if figures.limits.max_bytes is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_storage_max_bytes",
                "Most bytes the store may hold (storage_max_gb).",
                value=figures.limits.max_bytes,
            )
        removed = CounterMetricFamily(
            f"{PREFIX}_storage_removed_studies",
            "Studies the limits removed (least recently used first), by this process since start.",
        )
        removed.add_metric([], self.gateway.retention.removed_total)
        yield removed


def _histogram(
    name: str, documentation: str, buckets: Sequence[float], values: list[tuple[str, float]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["state"])
    for state in sorted({state for state, _ in values}):
        observed = [value for s, value in values if s == state]
        cumulative = [(str(float(b)), sum(1 for v in observed if v <= b)) for b in buckets]
        cumulative.append(("+Inf", len(observed)))
        family.add_metric([state], cumulative, sum_value=sum(observed))
    return family


def registry_for(gateway: Gateway) -> CollectorRegistry:
    """One registry per app: its database metrics plus the process-wide ones."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(gateway))
    registry.register(ASSOCIATION_FAILURES)
    registry.register(ECHO_SECONDS)
    registry.register(SQS_MESSAGES)
    registry.register(LAST_BULK_UPLOAD)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
