"""A lost history file is rebuilt from the outbox: the readings and decisions the outbox holds, mapped to
cloud rows on the way in and back to readings on the way out, give the same periods the running recorder
stored from the originals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.config import load_site
from controller.config.views import uploader_site
from controller.core.bus import DecisionRecord
from controller.core.reading import Reading
from controller.forecast.history import HistoryStore, history_path
from controller.forecast.service import MeterIds, replay
from controller.history_rebuild import rebuild_from_outbox
from tests.conftest import ROOT
from uploader.outbox import Outbox
from uploader.tables import map_decision, map_reading

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def records(site_id: object, bess_id: object, meter_id: object) -> list[Reading | DecisionRecord]:
    out: list[Reading | DecisionRecord] = []
    for minute in range(0, 150, 1):  # five settlement periods
        t = T0 + timedelta(minutes=minute)
        site_kw = 30.0 + (minute % 30)
        battery_kw = -50.0 if minute < 60 else 80.0
        out.append(Reading(site_id, "site-meter", "acuvim2", t,  # type: ignore[arg-type]
                           {"power_total_active": site_kw, "energy_imported_active": 1000.0 + minute,
                            "energy_exported_active": 5.0}, received_at=t))
        out.append(Reading(meter_id, "bess-meter", "acuvim2", t,  # type: ignore[arg-type]
                           {"power_total_active": battery_kw}, received_at=t))
        out.append(Reading(bess_id, "bess", "powerpack", t,  # type: ignore[arg-type]
                           {"soe_kwh": 500.0 + minute, "target_power_kw": battery_kw}, received_at=t))
        if minute % 4 == 0:
            sp = T0 + timedelta(minutes=30 * (minute // 30))
            out.append(DecisionRecord(t, {"target_kw": battery_kw, "effective_modes": ["niv_chase"], "inputs": {
                "imbalance_price": {"value": 7.5 + minute / 100, "settlement_period": sp.isoformat()},
                "imbalance_volume": {"value": 120.0, "settlement_period": sp.isoformat()}}}))
    return out


def test_a_missing_history_is_rebuilt_from_the_outbox_as_the_recorder_stored_it(tmp_path: Path) -> None:
    config = load_site(ROOT / "config/sites/demo.yaml").config
    view = uploader_site(config)
    c = config.controller
    assert c is not None and c.battery_meter is not None
    ids = MeterIds(config.device(c.site_meter).id, config.device(c.battery).id, config.device(c.battery_meter).id)
    originals = records(ids.site_meter, ids.battery, ids.battery_meter)
    end = T0 + timedelta(minutes=150)

    live = HistoryStore.open(tmp_path / "live")
    replay(live, ids, originals, end)
    expected = live.rows()
    live.close()
    assert len(expected) == 5 and expected[0].imbalance_price_p_per_kwh == pytest.approx(7.78)  # the period's last price seen

    directory = tmp_path / "demo"
    directory.mkdir()
    outbox = Outbox.open_or_replace(directory)[0]
    rows = [map_reading(r, view.routing) if isinstance(r, Reading) else map_decision(r, ids.battery)
            for r in originals]
    outbox.add(row for row in rows if row is not None)
    outbox.close()
    assert not history_path(directory).exists()

    store = HistoryStore.open(directory)
    stored = rebuild_from_outbox(store, directory, config, ids, end + timedelta(days=1))
    assert stored >= 5
    assert store.rows() == expected
    store.close()


def test_no_outbox_means_nothing_to_rebuild(tmp_path: Path) -> None:
    config = load_site(ROOT / "config/sites/demo.yaml").config
    c = config.controller
    assert c is not None
    store = HistoryStore.open(tmp_path)
    assert rebuild_from_outbox(store, tmp_path, config, MeterIds(config.device(c.site_meter).id),
                               T0) == 0
    assert store.rows() == []
    store.close()
