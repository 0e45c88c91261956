"""``GET /metrics``: Prometheus text exposition from ``prometheus_client``.

The app owns its registry (never the library's global one, so two apps in one process, as in
the tests, do not share or clash): the judge's collector, which reads the workers' counters and
the database's counts at scrape time, and the library's process, platform and GC collectors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from orchestrator.mission.result import ENDED, MissionState
from service.keys import POOL, STORE, WORKERS
from service.pipeline.wiring import MissionWorkers
from service.store import CALLBACK_STATES, MISSION_STATES

REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)

MetricSource = Callable[[], Awaitable[Iterable[Metric]]]
"""A front door's ``metrics``: its families at each scrape."""


class JudgeCollector(Collector):
    """The judge's own metrics; :meth:`refresh` reads the database before each scrape."""

    def __init__(
        self, workers: MissionWorkers | None = None, sources: Sequence[MetricSource] = ()
    ) -> None:
        self.workers = workers
        self.sources = list(sources)
        self.extra: list[Metric] = []
        self.pool: dict[str, Any] | None = None
        self.counts: dict[str, int] = {}
        self.callbacks: dict[str, int] = {}
        self.running_by_node: dict[str, int] = {}

    async def refresh(self, app: web.Application) -> None:
        self.workers = app[WORKERS]
        self.extra = [metric for source in self.sources for metric in await source()]
        pool = app.get(POOL)
        self.pool = pool.snapshot() if pool is not None else None
        self.counts = await app[STORE].missions.counts()
        self.callbacks = await app[STORE].callbacks.callback_counts()
        self.running_by_node = await app[STORE].missions.running_by_owner()

    def collect(self) -> Iterator[Metric]:
        w = self.workers
        if w is None:
            return
        m = w.metrics
        missions = GaugeMetricFamily(
            "judge_missions", "Missions in the database by state.", labels=["state"]
        )
        for state in MISSION_STATES:
            missions.add_metric([state], self.counts.get(state, 0))
        yield missions
        yield GaugeMetricFamily(
            "judge_queue_depth", "Missions waiting for a worker.", value=w.queue_depth
        )
        yield GaugeMetricFamily("judge_running", "Missions running now.", value=w.running)
        by_node = GaugeMetricFamily(
            "judge_cluster_running",
            "Missions running now per node (sandbox owner), from the shared database.",
            labels=["node"],
        )
        for node, n in sorted(self.running_by_node.items()):
            by_node.add_metric([node], n)
        yield by_node
        finished = CounterMetricFamily(
            "judge_missions_finished", "Missions finished, by state.", labels=["state"]
        )
        for state in (s for s in MissionState if s in ENDED):
            finished.add_metric([state], m.missions_finished.get(state, 0))
        yield finished
        ran = sum(
            m.missions_finished.get(s, 0) for s in (MissionState.DONE, MissionState.CANCELLED)
        )
        yield SummaryMetricFamily(
            "judge_mission_seconds",
            "Time missions spent running.",
            count_value=ran,
            sum_value=m.mission_seconds_sum,
        )
        phases = SummaryMetricFamily(
            "judge_phase_seconds", "Time spent per mission phase.", labels=["phase"]
        )
        for phase, seconds in sorted(m.phase_seconds.items()):
            phases.add_metric([phase], count_value=m.phase_counts[phase], sum_value=seconds)
        yield phases
        callbacks = GaugeMetricFamily(
            "judge_callbacks", "Callbacks in the database by delivery state.", labels=["state"]
        )
        for state in CALLBACK_STATES:
            callbacks.add_metric([state], self.callbacks.get(state, 0))
        yield callbacks
        yield CounterMetricFamily(
            "judge_callback_attempts", "Callback POSTs.", value=m.callback_attempts
        )
        yield CounterMetricFamily(
            "judge_callbacks_delivered", "Callbacks delivered.", value=m.callbacks_delivered
        )
        yield CounterMetricFamily(
            "judge_callback_failures", "Callbacks given up.", value=m.callback_failures
        )
        yield SummaryMetricFamily(
            "judge_turnaround_seconds",
            "From a mission's submission to its delivered callback.",
            count_value=m.turnaround_count,
            sum_value=m.turnaround_seconds_sum,
        )
        yield from self.extra  # the front doors' (before the pool's, as they always were)
        if self.pool is not None:
            yield from _pool(self.pool)


def _pool(snapshot: dict[str, Any]) -> Iterator[Metric]:
    """The warm pool: sandboxes ready and wanted per image, hits, misses, discards."""
    images: dict[str, dict[str, int]] = snapshot["images"]
    ready = GaugeMetricFamily(
        "judge_pool_ready", "Warm sandboxes ready, by image.", labels=["image"]
    )
    target = GaugeMetricFamily(
        "judge_pool_target", "Warm sandboxes wanted, by image.", labels=["image"]
    )
    for image, figures in sorted(images.items()):
        ready.add_metric([image], figures["ready"])
        target.add_metric([image], figures["target"])
    yield ready
    yield target
    for name, help_ in [
        ("hits", "Sandboxes taken warm from the pool."),
        ("misses", "Sandboxes created on demand (none warm)."),
        ("discarded", "Warm sandboxes removed unused (image changed, found dead)."),
    ]:
        yield CounterMetricFamily(f"judge_pool_{name}", help_, value=snapshot[name])


JUDGE = web.AppKey("metrics_judge", JudgeCollector)


def setup_metrics(app: web.Application, sources: Sequence[MetricSource] = ()) -> None:
    """Give the app its own registry with the judge's (and its doors' ``sources``) and the
    process's collectors."""
    registry = CollectorRegistry(auto_describe=True)
    judge = JudgeCollector(sources=sources)
    registry.register(judge)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    app[REGISTRY] = registry
    app[JUDGE] = judge


async def metrics(request: web.Request) -> web.Response:
    await request.app[JUDGE].refresh(request.app)
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


__all__ = ["REGISTRY", "JudgeCollector", "metrics", "setup_metrics"]
