"""charge_to_soe, discharge_to_soe, import/export avoidance and import avoidance when short."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from controller.engine.proposal import Proposal as P
from controller.engine.settlement import current_sp_start
from controller.engine.site_state import MarketValue, SiteState
from tests.modes.util import Z, build, close, local

CHARGE = {"type": "charge_to_soe", "periods": [{"start": "01:00", "end": "04:00"}], "params": {"soe_kwh": 700}}
CHARGE_DST = {"type": "charge_to_soe", "periods": [{"start": "00:30", "end": "03:00"}], "params": {"soe_kwh": 700}}
DISCHARGE = {"type": "discharge_to_soe", "periods": [{"days": "weekdays", "start": "19:00", "end": "21:00"}],
             "params": {"soe_kwh": 200}}
IMPORT = {"type": "import_avoidance", "periods": [{"start": "21:00", "end": "23:00"}]}
EXPORT = {"type": "export_avoidance", "periods": [{"start": "09:00", "end": "15:00"}]}
WHEN_SHORT = {"type": "import_avoidance_when_short", "periods": [{"start": "06:00", "end": "16:00"}],
              "params": {"short_prediction": {"allow_prediction": True, "volume_cutoff_mwh": 100,
                                              "time_cutoff_s": 900}}}


def S(site: float = 0.0, soe: float = 500.0, last: float = 0.0, volume: float | None = None,
      volume_sp: datetime | None = None) -> SiteState:
    vol = None if volume is None or volume_sp is None else MarketValue(volume, volume_sp)
    return SiteState(site, soe, last, imbalance_volume=vol)


NOON = local("2026-06-03T12:00")
SP_NOON = current_sp_start(NOON)

ROWS = [
    # (why, mode, state, now, proposal)
    ("charge: 276 kWh short over 3 h", CHARGE, S(soe=424), local("2026-06-03T01:00"), P(-100, None, -100)),
    ("charge: 46 kWh short over the last 30 min", CHARGE, S(soe=654), local("2026-06-03T03:30"),
     P(-100, None, -100)),
    ("charge: at the target", CHARGE, S(soe=700), local("2026-06-03T02:00"), None),
    ("charge: above the target", CHARGE, S(soe=800), local("2026-06-03T02:00"), None),
    ("charge: outside the period (end exclusive)", CHARGE, S(soe=100), local("2026-06-03T04:00"), None),
    ("charge: spring-forward day, 00:30 GMT to 03:00 BST is 1.5 h", CHARGE_DST, S(soe=562), Z("2026-03-29T00:30"),
     P(-100, None, -100)),
    ("charge: fall-back day, 00:30 BST to 03:00 GMT is 3.5 h", CHARGE_DST, S(soe=378), Z("2026-10-24T23:30"),
     P(-100, None, -100)),
    ("discharge: 400 kWh over 2 h", DISCHARGE, S(soe=600), local("2026-06-03T19:00"), P(200, 200, None)),
    ("discharge: 50 kWh over 30 min", DISCHARGE, S(soe=250), local("2026-06-03T20:30"), P(100, 100, None)),
    ("discharge: at the target", DISCHARGE, S(soe=200), local("2026-06-03T20:00"), None),
    ("discharge: not on Saturday", DISCHARGE, S(soe=600), local("2026-06-06T19:30"), None),
    ("import avoidance: net load 50", IMPORT, S(site=40, last=10), local("2026-06-03T21:30"), P(50, 50, None)),
    ("import avoidance: exporting anyway, only a floor", IMPORT, S(site=-30, last=10), local("2026-06-03T21:30"),
     P(None, -20, None)),
    ("import avoidance: zero net load", IMPORT, S(site=-10, last=10), local("2026-06-03T21:30"), P(0, 0, None)),
    ("import avoidance: outside its period", IMPORT, S(site=40), local("2026-06-03T23:00"), None),
    ("export avoidance: net export 50", EXPORT, S(site=-40, last=-10), local("2026-06-03T12:00"),
     P(-50, None, -50)),
    ("export avoidance: importing anyway, only a ceiling", EXPORT, S(site=30), local("2026-06-03T12:00"),
     P(None, None, 30)),
    ("when short: no market data", WHEN_SHORT, S(site=60), NOON + timedelta(minutes=15), None),
    ("when short: current SP short after 10 min", WHEN_SHORT, S(site=60, volume=20, volume_sp=SP_NOON),
     NOON + timedelta(minutes=15), P(60, 60, None)),
    ("when short: current SP short before 10 min", WHEN_SHORT, S(site=60, volume=20, volume_sp=SP_NOON),
     NOON + timedelta(minutes=9), None),
    ("when short: current SP long", WHEN_SHORT, S(site=60, volume=-20, volume_sp=SP_NOON),
     NOON + timedelta(minutes=15), None),
    ("when short: previous SP short, early, big", WHEN_SHORT,
     S(site=60, volume=150, volume_sp=SP_NOON - timedelta(minutes=30)), NOON + timedelta(minutes=5), P(60, 60, None)),
    ("when short: previous SP short under the volume cut-off", WHEN_SHORT,
     S(site=60, volume=80, volume_sp=SP_NOON - timedelta(minutes=30)), NOON + timedelta(minutes=5), None),
    ("when short: previous SP short past the time cut-off", WHEN_SHORT,
     S(site=60, volume=150, volume_sp=SP_NOON - timedelta(minutes=30)), NOON + timedelta(minutes=15, seconds=1),
     None),
    ("when short: previous SP long is never used", WHEN_SHORT,
     S(site=60, volume=-300, volume_sp=SP_NOON - timedelta(minutes=30)), NOON + timedelta(minutes=5), None),
]


@pytest.mark.parametrize(("why", "mode", "state", "now", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_mode(why: str, mode: dict[str, object], state: SiteState, now: datetime, expected: P | None) -> None:
    got = build(mode).propose(state, now)
    assert close(got, expected), got
