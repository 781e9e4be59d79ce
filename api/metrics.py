"""Process-local counters of the read API, rendered on `GET /metrics` in Prometheus' text format (0.0.4).

Each API process (one per ECS task) counts its own requests; Prometheus sums over tasks. Counters are
thread-safe because the API answers requests on a thread pool.
"""
from __future__ import annotations

import threading
from typing import Dict, Iterable, Tuple

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Tuple[str, ...] = ()):
        self.name = name
        self.help = help_text
        self.labels = labels
        self._values: Dict[Tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        if not labels:
            self._values[()] = 0.0  # an unlabelled series is exposed from the start, at zero

    def value(self, *label_values: str) -> float:
        with self._lock:
            return self._values.get(tuple(label_values), 0.0)

    def _key(self, label_values: Tuple[str, ...]) -> Tuple[str, ...]:
        if len(label_values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {label_values}")
        return label_values

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            items = sorted(self._values.items())
        for label_values, value in items:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(self.labels, label_values))
            text = str(int(value)) if value.is_integer() else repr(value)
            yield f"{self.name}{{{labels}}} {text}" if labels else f"{self.name} {text}"


class Counter(_Metric):
    kind = "counter"

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        key = self._key(label_values)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, *label_values: str) -> None:
        key = self._key(label_values)
        with self._lock:
            self._values[key] = float(value)


class ApiMetrics:
    """The API's metrics, one instance per process (per app)."""

    def __init__(self) -> None:
        self.cache_hits = Counter("advising_cache_hits_total", "Lookups answered from Redis.", ("kind",))
        self.cache_misses = Counter("advising_cache_misses_total", "Lookups Redis did not have; answered from PostgreSQL and stored.", ("kind",))
        self.cache_errors = Counter("advising_cache_errors_total", "Redis operations that failed (connection refused, timeout, ...).", ("op",))
        self.cache_bypass = Counter("advising_cache_bypass_total", "Lookups answered from PostgreSQL without Redis because Redis was failing.", ("kind",))
        self.cache_not_found_uncached = Counter("advising_cache_not_found_uncached_total", "Unknown ids not cached because the cap on not-found entries was reached.", ("kind",))
        self.cache_coalesced = Counter("advising_cache_coalesced_total", "Lookups that waited for a concurrent identical lookup instead of running their own.", ("kind",))
        self.redis_up = Gauge("advising_cache_redis_up", "1 while Redis answers, 0 after a failure until it answers again.")
        self.db_queries = Counter("advising_db_queries_total", "Queries sent to PostgreSQL.", ("query",))
        self.db_errors = Counter("advising_db_errors_total", "Queries that failed because PostgreSQL was unreachable or too slow.", ("query",))
        self.redis_up.set(1)

    def all(self) -> Tuple[_Metric, ...]:
        return tuple(m for m in vars(self).values() if isinstance(m, _Metric))

    def render(self) -> str:
        return "\n".join(line for metric in self.all() for line in metric.render()) + "\n"
