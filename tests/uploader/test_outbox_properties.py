"""Property: whatever the interleaving of writes, deliveries (per sink) and pruning, a row leaves a sink's
pending set only by that sink's acknowledgement, and pruning removes only rows every sink has delivered."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.catalog import CLOUD_ROUTING
from tests.uploader.fixtures import BESS_ID, T0, bess
from uploader.outbox import Outbox
from uploader.tables import map_reading

SINKS = ("a", "b")

ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.lists(st.integers(0, 300), min_size=1, max_size=20)),
    st.tuples(st.just("ack"), st.sampled_from(SINKS), st.integers(1, 15)),
    st.tuples(st.just("prune"), st.integers(0, 400)),
), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_rows_leave_only_by_delivery_or_retention(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as d:
        box = Outbox.open(Path(d), retention_s=3600)
        box.register_sinks(SINKS)
        held: set[int] = set()  # minutes of the rows in the outbox
        pending = {s: set() for s in SINKS}  # type: dict[str, set[int]]
        for step in steps:
            if step[0] == "add":
                new = set(step[1]) - held
                box.add([map_reading(bess(T0 + timedelta(minutes=m)), CLOUD_ROUTING) for m in step[1]])
                held |= new
                for s in SINKS:
                    pending[s] |= new
            elif step[0] == "ack":
                _, sink, n = step
                rows = box.pending(sink, n)
                if rows:
                    box.ack(sink, rows[-1].seq)
                    pending[sink] -= {int((r.time - T0).total_seconds() // 60) for r in rows}
            else:
                now = T0 + timedelta(minutes=step[1])
                box.prune(now)
                old = {m for m in held if T0 + timedelta(minutes=m) < now - timedelta(hours=1)}
                delivered_everywhere = held - pending["a"] - pending["b"]
                held_now = {int((r.time - T0).total_seconds() // 60)
                            for r in box.rows_between("mg_bess_readings", str(BESS_ID), T0, T0 + timedelta(days=1))}
                # What pruning removed was delivered by every sink and older than the retention.
                assert held - held_now <= (old & delivered_everywhere)
                held = held_now
            for s in SINKS:
                got = {int((r.time - T0).total_seconds() // 60) for r in box.pending(s, 10_000)}
                assert got == pending[s]
        box.close()
