"""The child that uploads a large backlog (uploader/drain.py says why and how the daemon runs it).

One JSON request on stdin (`uploader.drain.request`), one JSON answer on stdout (`DrainResult`), logs on
stderr. The config classes are built as records before anything imports them, as in the daemon: the
child validates nothing (the daemon's validator did) and so never loads pydantic.
"""

from __future__ import annotations

import sys
from typing import Any

from controller.core import records

records.activate()  # before the first import of a config class


async def _inline(fn: Any) -> Any:
    # The child does nothing else meanwhile: its outbox calls need no thread of their own.
    return fn()


async def drain(req: dict[str, Any]) -> Any:
    from controller.core.clock import RealClock
    from uploader.delivery import Delivery, SinkCounters
    from uploader.drain import MAX_ALERTS, SECRET, DrainResult
    from uploader.factory import make_sink
    from uploader.outbox import Outbox
    from uploader.sink import SinkError

    spec = req["sink"]
    fields = {k: records.secret(v[SECRET]) if isinstance(v, dict) and SECRET in v else v
              for k, v in spec["fields"].items()}
    sink_config = records.rebuild(spec["module"], spec["class"], fields)
    o = req["outbox"]
    outbox = Outbox.open(o["dir"], synchronous=o["synchronous"], max_bytes=int(o["max_bytes"]),
                         retention_s=float(o["retention_s"]))
    result = DrainResult()

    def collect(kind: str, level: str, message: str, **data: Any) -> None:
        if len(result.alerts) < MAX_ALERTS:
            result.alerts.append((kind, level, message, data))
        else:
            result.alerts_dropped += 1

    counters = SinkCounters()
    sink = make_sink(sink_config)
    delivery = Delivery(sink, outbox, RealClock(), batch_size=int(req["batch_size"]),
                        backoff_max_s=sink_config.backoff_max_s, alert=collect, counters=counters, run=_inline)
    try:
        while await delivery.deliver_once() >= delivery.batch_size:
            pass
    except SinkError as exc:  # counted by the delivery; the daemon tries again with its backoff
        result.error, result.error_kind = exc.detail, exc.kind.value
    finally:
        await sink.close()
        outbox.close()
    result.rows, result.successes, result.failures = counters.rows_uploaded, counters.successes, counters.failures
    result.latency_sum_s, result.latency_count = counters.latency_sum_s, counters.latency_count
    result.quarantined, result.batch_size = counters.rows_quarantined, delivery.batch_size
    result.errors_by_kind = counters.errors_by_kind
    return result


def main() -> int:
    import asyncio
    import json
    from dataclasses import asdict

    from controller.core.logs import configure_logging, get_logger, register_redactions

    configure_logging("json", "info", stream=sys.stderr)  # stdout carries the answer
    log = get_logger("uploader")
    try:
        req = json.loads(sys.stdin.read())
        register_redactions(req.get("redactions", []))
        result = asyncio.run(drain(req))
    except Exception as exc:  # one line in the journal, not a traceback: the daemon carries on in-process
        log.error("upload_child_crashed", error=repr(exc))
        return 1
    log.info("upload_child_done", rows=result.rows, error_kind=result.error_kind)
    sys.stdout.write(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
