"""`flux-edge backfill`: (b) rows the cloud lost are resent from the outbox, (c) half-hour slots nobody holds
are read back from the Emlite meter's profile log (the EMOP simulator over real TCP) and delivered."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from controller.config.loader import parse_site
from controller.core.clock import RealClock, align_down
from controller.core.reading import Reading
from devices.catalog import CLOUD_ROUTING
from simulator.cloud import CloudStandIn
from simulator.context import SimContext
from simulator.emlite import EmliteSimulator
from tests.conftest import ROOT
from tests.devices.sim_sites import emlite_device
from uploader.outbox import Outbox
from uploader.tables import map_reading

KEY = "backfill-key"


@pytest.fixture
async def cloud(pg_dsn: str) -> AsyncIterator[CloudStandIn]:
    async with CloudStandIn(pg_dsn, KEY) as standin:
        yield standin


def _cloud_times(dsn: str, device_id: str) -> list[datetime]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT time FROM flux.mg_emlite_readings WHERE device_id = %s ORDER BY time", (device_id,))]


async def test_backfill_resends_lost_rows_and_reads_back_meter_profiles(tmp_path: Path, cloud: CloudStandIn,
                                                                        pg_dsn: str) -> None:
    meter = emlite_device("home-1")
    doc = {"site": {"id": "bf", "name": "Backfill"}, "devices": [meter],
           "buffer": {"path": str(tmp_path / "{site}")},
           "uploader": {"sinks": [{"type": "postgrest", "name": "cloud", "url": cloud.url, "api_key": KEY}]},
           "simulator": {"seed": 3}}
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(doc))
    config = parse_site(site_file.read_text(), str(site_file))
    clock = RealClock()
    sim = EmliteSimulator.from_site(SimContext(config, clock))
    await sim.start({"home-1": ("127.0.0.1", meter["port"])})
    try:
        now = clock.now()
        end = align_down(now, 1800) - timedelta(hours=1)  # the backfill leaves the last hour to the pollers
        since = end - timedelta(hours=6)
        slots = [since + timedelta(minutes=30 * i) for i in range(12)]
        device_id = uuid.UUID(meter["id"])
        # Slots 0-3 were polled and delivered, but the cloud has since lost 1 and 2 (b).
        box = Outbox.open(tmp_path / "bf")
        box.register_sinks(["cloud"])
        box.add([map_reading(Reading(device_id, "home-1", "emlite", t, {"import_a_kwh": 1.0 + i}), CLOUD_ROUTING)
                 for i, t in enumerate(slots[:4])])
        box.ack("cloud", box.pending("cloud", 100)[-1].seq)
        with psycopg.connect(pg_dsn) as conn:
            for i, t in enumerate(slots[:4]):
                if i not in (1, 2):
                    conn.execute("INSERT INTO flux.mg_emlite_readings (device_id, time, import_a_kwh) "
                                 "VALUES (%s, %s, %s)", (device_id, t, 1.0 + i))
        box.close()
        # Slots 4-11 exist nowhere but in the meter's profile log (c).
        command = [sys.executable, "-m", "controller", "backfill", "--site", str(site_file), "--since",
                   since.isoformat()]
        proc = await asyncio.to_thread(subprocess.run, command, check=False, capture_output=True, text=True,
                                       timeout=300, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout)  # stdout is the report alone; progress and logs go to stderr
        assert "backfill: 1/2 checking what the cloud (cloud) lacks since" in proc.stderr
        assert "backfill:     resent {'cloud': {'home-1': 2}}" in proc.stderr
        assert "backfill: 2/2 uploading what is pending" in proc.stderr
        assert report["resent"] == {"cloud": {"home-1": 2}}
        assert report["read_back"]["home-1"] >= 8
        assert report["delivered"]["cloud"] >= 8
        held = _cloud_times(pg_dsn, str(device_id))
        assert set(slots) <= set(held)
        assert len(held) == len(set(held))
        with psycopg.connect(pg_dsn) as conn:
            row = conn.execute("SELECT import_a_kwh FROM flux.mg_emlite_readings WHERE device_id = %s AND time = %s",
                               (device_id, slots[8])).fetchone()
        assert row is not None and row[0] == pytest.approx(sim.servers["home-1"].meter.import_wh(slots[8])[0]
                                                           // 1 / 1000, abs=0.001)
    finally:
        await sim.close()
