"""The Judge0 door's metric families on ``/metrics``: its compile cache."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from service.pipeline.compilecache import CompileCache


def cache_metrics(cache: CompileCache) -> list[Metric]:
    """Hits and misses since the start, and what the cache holds now."""
    hits = CounterMetricFamily(
        "judge_judge0_compile_cache_hits", "Submissions that reused a compile (this process)."
    )
    hits.add_metric([], cache.hits)
    misses = CounterMetricFamily(
        "judge_judge0_compile_cache_misses", "Submissions that compiled (this process)."
    )
    misses.add_metric([], cache.misses)
    entries = GaugeMetricFamily("judge_judge0_compile_cache_entries", "Compiles kept now.")
    entries.add_metric([], len(cache))
    size = GaugeMetricFamily("judge_judge0_compile_cache_bytes", "Bytes of compiles kept now.")
    size.add_metric([], cache.size_bytes)
    return [hits, misses, entries, size]
