"""The uploader's daemon components: the outbox writer (critical), one delivery loop per sink, and the
periodic coverage check.

The caller creates the `OutboxService` once (it listens on the bus from then on) and the sink
counters dict, and keeps both across reloads; each build hands them in with the site's current view.
Each component's key is the part of the view it uses, so a reload restarts only what it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from controller.core.clock import Clock
from controller.core.component import STOP_OUTBOX, STOP_UPLOAD, ComponentSpec
from controller.core.supervisor import Backoff
from uploader.coverage import run_coverage
from uploader.delivery import Alert, SinkCounters
from uploader.site import UploaderSite
from uploader.upload import run_sink
from uploader.writer import Beat, OutboxService, OutboxWriter


def components(site: UploaderSite, service: OutboxService, *, clock: Clock, alert: Alert, beat: Beat,
               devices: Callable[[], Mapping[str, object]],
               counters: dict[str, SinkCounters]) -> list[ComponentSpec]:
    """`devices` returns the live drivers by name (profile read-back); `counters`: sink name -> its counters."""
    sink_names = tuple(s.name for s in site.uploader.sinks)
    writer = OutboxWriter(service, site, clock=clock, alert=alert, beat=beat)
    specs = [ComponentSpec("outbox", key=(site.site_id, site.buffer, sink_names, site.battery_id, site.routing),
                           factory=writer.run, critical=True, stop_order=STOP_OUTBOX,
                           backoff=Backoff(initial_s=1.0, max_s=30.0))]
    for sc in site.uploader.sinks:
        # Created here, not in the loop: the status and metrics see a sink from the build that adds it.
        sink_counters = counters.setdefault(sc.name, SinkCounters())
        specs.append(ComponentSpec(f"upload:{sc.name}", key=(sc, site.site_id, site.buffer, site.devices),
                                   factory=partial(run_sink, site, service, sc, clock=clock, alert=alert,
                                                   counters=sink_counters),
                                   stop_order=STOP_UPLOAD, backoff=Backoff(initial_s=1.0, max_s=60.0)))
    if site.uploader.sinks:
        specs.append(ComponentSpec("coverage", key=site,
                                   factory=partial(run_coverage, site, service, clock=clock, devices=devices,
                                                   counters=counters),
                                   stop_order=STOP_UPLOAD, backoff=Backoff(initial_s=10.0, max_s=600.0)))
    return specs
