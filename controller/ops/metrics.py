"""Prometheus metrics, rendered at scrape time from the runtime's own state.

Nothing is double-booked: device counters and latency histograms are the DeviceHealth the poll
scheduler keeps, outbox and upload figures are the outbox's and sinks' own stats, and only what no
one else counts (constraints hit per control tick) is tallied here, from the decisions on the bus.
Served on 127.0.0.1 by default; no label or value ever carries a configured secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from controller.core.logs import get_logger
from controller.ops.httpd import HttpEndpoint, HttpRequest, HttpResponse
from controller.ops.status import OpsView, take_view
from controller.ops.tally import DecisionTally

if TYPE_CHECKING:
    from controller.runtime import Runtime

log = get_logger("ops.metrics")

PREFIX = "flux_edge"
HEALTH_STATES = ("ok", "degraded", "down", "pending")  # pending: never polled yet


def _histogram(name: str, doc: str, label: str, series: list[tuple[str, tuple[float, ...], list[int], float]]
               ) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=[label])
    for value, bounds, counts, total in series:
        if not bounds or len(counts) != len(bounds) + 1:
            continue
        buckets = [(_bound(b), float(c)) for b, c in zip(bounds, counts[:-1], strict=True)]
        buckets.append(("+Inf", float(counts[-1])))
        fam.add_metric([value], buckets, total)
    return fam


def _bound(b: float) -> str:
    return repr(float(b))


class ViewCollector(Collector):
    """Turns one OpsView (plus the decision tally) into metric families."""

    def __init__(self, view: OpsView, tally: DecisionTally | None) -> None:
        self.view = view
        self.tally = tally

    def collect(self) -> Iterator[Metric]:
        v = self.view
        p = PREFIX
        info = GaugeMetricFamily(f"{p}_config_info", "running site config", labels=["site", "sha256"])
        info.add_metric([v.site_id, v.config_sha256[:12]], 1.0)
        yield info

        polls = CounterMetricFamily(f"{p}_device_polls", "device polls by result", labels=["device", "kind", "result"])
        health = GaugeMetricFamily(f"{p}_device_health", "1 for the device's current health state",
                                   labels=["device", "state"])
        age = GaugeMetricFamily(f"{p}_device_reading_age_seconds", "age of the newest value read from the device",
                                labels=["device"])
        for d in v.devices:
            polls.add_metric([d.name, d.kind, "ok"], float(d.polls_ok))
            polls.add_metric([d.name, d.kind, "failed"], float(d.polls_failed))
            for state in HEALTH_STATES:
                health.add_metric([d.name, state], 1.0 if d.state == state else 0.0)
            if d.reading_age_s is not None:
                age.add_metric([d.name], d.reading_age_s)
        yield polls
        yield health
        yield age
        yield _histogram(f"{p}_device_poll_latency_seconds", "device poll latency", "device",
                         [(d.name, d.latency_buckets, d.latency_counts, d.latency_sum_s) for d in v.devices])

        for name, doc, value in (
            ("battery_setpoint_kw", "last battery setpoint decided (+ discharge)", v.target_kw),
            ("battery_soe_kwh", "battery state of energy", v.soe_kwh),
            ("site_power_kw", "site power at the grid connection (+ import)", v.site_power_kw),
        ):
            if value is not None:
                yield GaugeMetricFamily(f"{p}_{name}", doc, value=value)
        if v.dry_run is not None:
            yield GaugeMetricFamily(f"{p}_dry_run", "1 while the battery is not written", value=float(v.dry_run))
        modes = list(dict.fromkeys([*v.configured_modes, *v.active_modes, *v.effective_modes]))
        for kind, names in (("active", v.active_modes), ("effective", v.effective_modes)):
            fam = GaugeMetricFamily(f"{p}_mode_{kind}", f"1 for each {kind} mode", labels=["mode"])
            for m in modes:
                fam.add_metric([m], 1.0 if m in names else 0.0)
            yield fam
        hits = CounterMetricFamily(f"{p}_constraint_hits", "control ticks bound by each constraint",
                                   labels=["constraint"])
        if self.tally is not None:
            for c, n in sorted(self.tally.constraints.items()):
                hits.add_metric([c], float(n))
            yield CounterMetricFamily(f"{p}_control_ticks", "control decisions seen", value=float(self.tally.ticks))
        yield hits

        pending = GaugeMetricFamily(f"{p}_outbox_pending_rows", "rows not yet uploaded", labels=["sink"])
        oldest = GaugeMetricFamily(f"{p}_outbox_oldest_pending_age_seconds", "age of the oldest pending row",
                                   labels=["sink"])
        uploads = CounterMetricFamily(f"{p}_uploads", "upload batches by result", labels=["sink", "result"])
        recovered = CounterMetricFamily(f"{p}_rows_recovered", "rows resent by gap recovery", labels=["sink"])
        children = CounterMetricFamily(f"{p}_upload_children", "large backlogs handed to an upload child process, "
                                       "by how it ended", labels=["sink", "result"])
        for s in v.sinks:
            if s.pending is not None:
                pending.add_metric([s.name], float(s.pending))
            if s.oldest_pending is not None:
                oldest.add_metric([s.name], max(0.0, (v.time - s.oldest_pending).total_seconds()))
            elif s.pending == 0:
                oldest.add_metric([s.name], 0.0)
            if s.uploads_ok is not None:
                uploads.add_metric([s.name, "ok"], float(s.uploads_ok))
            if s.uploads_failed is not None:
                uploads.add_metric([s.name, "failed"], float(s.uploads_failed))
            if s.rows_recovered is not None:
                recovered.add_metric([s.name], float(s.rows_recovered))
            if s.child_drains is not None:
                children.add_metric([s.name, "ok"], float(s.child_drains))
            if s.child_failures is not None:
                children.add_metric([s.name, "failed"], float(s.child_failures))
        yield pending
        yield oldest
        yield uploads
        yield recovered
        yield children
        latency = SummaryMetricFamily(f"{p}_upload_latency_seconds", "upload request latency", labels=["sink"])
        for s in v.sinks:
            if s.latency_count is not None:
                latency.add_metric([s.name], s.latency_count, s.latency_sum_s)
        yield latency
        last = GaugeMetricFamily(f"{p}_last_upload_timestamp_seconds", "time of the last accepted upload",
                                 labels=["sink"])
        for s in v.sinks:
            if s.last_upload is not None:
                last.add_metric([s.name], s.last_upload.timestamp())
        yield last
        if v.outbox_bytes is not None:
            yield GaugeMetricFamily(f"{p}_outbox_bytes", "outbox database size", value=float(v.outbox_bytes))
        if v.outbox_dropped is not None:
            yield CounterMetricFamily(f"{p}_outbox_dropped_rows", "undelivered rows dropped at the size bound",
                                      value=float(v.outbox_dropped))

        beats = GaugeMetricFamily(f"{p}_heartbeat_age_seconds", "real seconds since the component last showed progress",
                                  labels=["component"])
        for name, age_s in v.heartbeat_age_s.items():
            beats.add_metric([name], age_s)
        yield beats
        reloads = CounterMetricFamily(f"{p}_config_reloads", "config reloads by result", labels=["result"])
        reloads.add_metric(["ok"], float(v.reloads_ok))
        reloads.add_metric(["failed"], float(v.reloads_failed))
        yield reloads
        if v.mqtt_connected is not None:
            yield GaugeMetricFamily(f"{p}_mqtt_connected", "1 while connected to the MQTT broker",
                                    value=float(v.mqtt_connected))
        if v.mqtt_dropped is not None:
            yield CounterMetricFamily(f"{p}_mqtt_dropped_messages", "messages dropped from the bounded MQTT queue",
                                      value=float(v.mqtt_dropped))


def render(view: OpsView, tally: DecisionTally | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewCollector(view, tally))
    return generate_latest(registry)


class MetricsServer:
    """The scrape endpoint: every GET /metrics renders a fresh view."""

    def __init__(self, runtime: Runtime, tally: DecisionTally | None, host: str, port: int) -> None:
        self._runtime = runtime
        self._tally = tally
        self.endpoint = HttpEndpoint(self._handle, host, port)

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET":
            return HttpResponse(405, b"GET only\n")
        if request.path not in ("/metrics", "/"):
            return HttpResponse(404, b"try /metrics\n")
        last = self._tally.last if self._tally is not None else None
        view = await take_view(self._runtime, last)
        return HttpResponse(200, render(view, self._tally), CONTENT_TYPE_LATEST)

    async def run(self) -> None:
        await self.endpoint.start()
        log.info("metrics_listening", host=self.endpoint.host, port=self.endpoint.port)
        try:
            await asyncio.Event().wait()
        finally:
            await self.endpoint.close()
