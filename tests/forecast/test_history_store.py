"""The local history: durable, bounded by time with the drops counted, built from readings."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from controller.core.reading import Reading
from controller.forecast.history import HistoryStore, PeriodAccumulator
from tests.forecast.helpers import rows_from

SITE, BESS, BMETER = UUID(int=1), UUID(int=2), UUID(int=3)


def test_durability_settings_like_the_outbox(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path)
    store.close()
    conn = sqlite3.connect(tmp_path / "history.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store = HistoryStore.open(tmp_path)
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_bounded_oldest_dropped_first_and_counted(tmp_path: Path) -> None:
    rows = rows_from(lambda t: 50.0, date(2026, 6, 1), 84)  # 12 weeks
    store = HistoryStore.open(tmp_path, keep_days=56)
    store.put((r, None) for r in rows[:48 * 50])
    assert store.stats()["dropped"] == 0
    store.put(((r, None) for r in rows[48 * 50:]), source="import")
    stats = store.stats()
    assert stats["periods"] == 56 * 48 + 1
    assert stats["dropped"] == len(rows) - stats["periods"]
    assert stats["oldest"] == (rows[-1].period_start - timedelta(days=56)).isoformat()
    store.close()
    again = HistoryStore.open(tmp_path, keep_days=56)
    assert again.rows()[-1] == rows[-1]
    again.close()
    with pytest.raises(ValueError, match="8 weeks"):
        HistoryStore.open(tmp_path, keep_days=30)


def reading(device: UUID, t: datetime, **fields: float) -> Reading:
    return Reading(device, "d", "acuvim2", t, fields)


@pytest.mark.parametrize(("why", "counter_step", "expected_import"), [
    ("counter agrees with power", 100 / 60, 50.0),
    ("meter replaced: counter jumps back", None, 50.0),
])
def test_accumulator(why: str, counter_step: float | None, expected_import: float) -> None:
    start = datetime(2026, 6, 1, 12, tzinfo=UTC)
    acc = PeriodAccumulator(start, site_meter=SITE, battery=BESS, battery_meter=BMETER)
    for i in range(30):
        t = start + timedelta(minutes=i)
        counter = 1000 + i * counter_step if counter_step is not None else (5000.0 if i < 10 else 3.0 + i)
        acc.feed(reading(SITE, t, power_total_active=100.0, energy_imported_active=counter, energy_exported_active=7.0))
        acc.feed(reading(BMETER, t, power_total_active=-40.0))  # charging 40 kW
        acc.feed(reading(BESS, t, soe_kwh=500.0 + i))
    acc.feed(reading(SITE, start + timedelta(minutes=30), power_total_active=1e6))  # next period: ignored
    acc.note_decision(-40.0, ["niv_chase"])
    acc.note_market(12.5, -80.0)
    row, did = acc.close()
    assert row.site_import_kwh == pytest.approx(expected_import)
    assert row.site_export_kwh == 0.0
    assert row.battery_charge_kwh == pytest.approx(20.0) and row.battery_discharge_kwh == 0.0
    assert row.soe_end_kwh == 529.0
    assert row.net_load_kwh() == pytest.approx(30.0)  # 100 kW at the meter of which 40 into the battery
    assert (row.imbalance_price_p_per_kwh, row.imbalance_volume_mwh) == (12.5, -80.0)
    assert did.modes == "niv_chase" and did.site_power_mean_kw == 100.0 and did.battery_power_mean_kw == -40.0
