"""Bad mode configuration is a clear error when the file loads, with the path of the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import ConfigError, parse_site

DEMO = Path(__file__).resolve().parents[2] / "config" / "sites" / "demo.yaml"
CURVE = [{"price": 0, "soe_kwh": 900}, {"price": 10, "soe_kwh": 300}]


def with_mode(mode: dict[str, Any]) -> str:
    doc = yaml.safe_load(DEMO.read_text())
    doc["controller"]["modes"] = [mode]
    return yaml.safe_dump(doc)


ROWS = [
    ("unknown mode type", {"type": "niv_chaser", "periods": [{"start": "00:00", "end": "24:00"}]},
     "controller.modes.0.type", "unknown type 'niv_chaser' (did you mean 'niv_chase'?)"),
    ("missing params", {"type": "charge_to_soe", "periods": [{"start": "01:00", "end": "04:00"}]},
     "controller.modes.0.params", "required field is missing"),
    ("curve with one point", {"type": "niv_chase", "periods": [{"start": "00:00", "end": "24:00"}],
                              "params": {"charge_curve": CURVE[:1], "discharge_curve": CURVE}},
     "controller.modes.0.params.charge_curve", "at least two points"),
    ("curve prices not increasing", {"type": "niv_chase", "periods": [{"start": "00:00", "end": "24:00"}],
                                     "params": {"charge_curve": CURVE, "discharge_curve": CURVE[::-1]}},
     "controller.modes.0.params.discharge_curve", "strictly increase"),
    ("encourage below force", {"type": "dynamic_peak_approach", "periods": [{"start": "16:00", "end": "19:00"}],
                               "params": {"to_soe_kwh": 900, "encourage_to_soe_kwh": 800,
                                          "assumed_charge_power_kw": 200}},
     "controller.modes.0.params.encourage_to_soe_kwh", "must be at least to_soe_kwh"),
    ("unknown day", {"type": "import_avoidance", "periods": [{"days": ["funday"], "start": "16:00", "end": "19:00"}]},
     "controller.modes.0.periods.0.days", "unknown day 'funday'"),
    ("overlapping periods of one mode", {"type": "export_avoidance", "periods": [
        {"start": "09:00", "end": "15:00"}, {"start": "14:00", "end": "16:00"}]},
     "controller.modes.0.periods.1", "overlaps periods.0"),
    ("empty period", {"type": "export_avoidance", "periods": [{"start": "09:00", "end": "09:00"}]},
     "controller.modes.0.periods.0.end", "period is empty"),
    ("unknown param", {"type": "charge_to_soe", "periods": [{"start": "01:00", "end": "04:00"}],
                       "params": {"soe_kwh": 700, "soe": 700}},
     "controller.modes.0.params.soe", "unknown key 'soe'"),
]


@pytest.mark.parametrize(("why", "mode", "path", "message"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_mode_is_reported_at_load(why: str, mode: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_site(with_mode(mode), "site.yaml")
    problems = [(p.path, p.message) for p in info.value.problems]
    assert any(p == path and message in m for p, m in problems), problems
