"""The Prometheus text exposition of the application's OpenTelemetry metrics.

Metric names become Prometheus names with dots replaced by underscores (``rpc.server.call.duration``
-> ``rpc_server_call_duration_seconds``); counters get ``_total``; attribute names become labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Sum,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _name(name: str, unit: str) -> str:
    base = _INVALID.sub("_", name)
    if unit == "s" and not base.endswith("_seconds"):
        base += "_seconds"
    return base


def _labels(attributes: Any) -> dict[str, str]:
    return {_INVALID.sub("_", str(k)): str(v) for k, v in (attributes or {}).items()}


class _Collector:
    def __init__(self, reader: InMemoryMetricReader) -> None:
        self._reader = reader

    def collect(self) -> Iterator[Metric]:
        data = self._reader.get_metrics_data()
        for resource_metrics in getattr(data, "resource_metrics", None) or ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    family = _family(metric)
                    if family is not None:
                        yield family


def _family(metric: Any) -> Metric | None:
    name, doc, data = _name(metric.name, metric.unit), metric.description or metric.name, metric.data
    points = list(data.data_points)
    keys = sorted({key for point in points for key in _labels(point.attributes)})
    if isinstance(data, Histogram):
        family = HistogramMetricFamily(name, doc, labels=keys)
        for point in points:
            cumulative, buckets = 0, []
            for bound, count in zip(point.explicit_bounds, point.bucket_counts):
                cumulative += count
                buckets.append((repr(float(bound)), cumulative))
            buckets.append(("+Inf", point.count))
            labels = _labels(point.attributes)
            family.add_metric([labels.get(k, "") for k in keys], buckets, point.sum)
        return family
    if isinstance(data, Sum) and data.is_monotonic:
        family = CounterMetricFamily(name, doc, labels=keys)
    elif isinstance(data, (Sum, Gauge)):
        family = GaugeMetricFamily(name, doc, labels=keys)
    else:
        return None
    for point in points:
        labels = _labels(point.attributes)
        family.add_metric([labels.get(k, "") for k in keys], point.value)
    return family


def exposition(reader: InMemoryMetricReader) -> bytes:
    """The metrics collected by ``reader`` in the Prometheus text format."""

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(reader))
    return generate_latest(registry)
