"""Decide states with the answers the demo site (and the converted reference example, which has the same
modes) must give: shared by the `decide` and `import-legacy` end-to-end tests."""

from __future__ import annotations

from typing import Any

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("peak with no prediction: import avoidance without extra discharge",
     {"time": "2026-06-03T16:20:00+01:00", "site_power_kw": 42.0, "bess_soe_kwh": 800.0,
      "data_age_s": {"site_power_kw": 3, "bess_soe_kwh": 3}},
     {"target_kw": 42.0, "active_modes": ["dynamic_peak_discharge", "dynamic_peak_approach"],
      "effective_modes": ["dynamic_peak_discharge"], "constraints": []}),
    ("stale SoE: safe idle",
     {"time": "2026-06-03T16:20:00+01:00", "site_power_kw": 42.0, "bess_soe_kwh": 800.0,
      "data_age_s": {"site_power_kw": 3, "bess_soe_kwh": 45}},
     {"target_kw": 0.0, "constraints": ["stale_data"]}),
    ("weekend NIV chase, short at 25 p/kWh: discharge 700 kW, limited to 250",
     {"time": "2026-06-06T16:15:00+01:00", "site_power_kw": 30.0, "bess_soe_kwh": 500.0,
      "imbalance_price": {"value": 25.0, "settlement_period": "2026-06-06T16:00:00+01:00"},
      "imbalance_volume": {"value": 120.0, "settlement_period": "2026-06-06T16:00:00+01:00"}},
     {"target_kw": 250.0, "active_modes": ["niv_chase"], "effective_modes": ["niv_chase"],
      "constraints": ["bess_power"]}),
    ("axle charge_max wins over export avoidance",
     {"time": "2026-06-03T12:00:00+01:00", "site_power_kw": 20.0, "bess_soe_kwh": 500.0,
      "axle_schedule": [{"start": "2026-06-03T11:30:00+01:00", "end": "2026-06-03T12:30:00+01:00",
                         "action": "charge_max"}]},
     {"target_kw": -250.0, "active_modes": ["axle", "export_avoidance"], "effective_modes": ["axle"],
      "constraints": ["bess_power"]}),
    ("charge to SoE overnight: 276 kWh over 3 h",
     {"time": "2026-06-03T01:00:00+01:00", "site_power_kw": 10.0, "bess_soe_kwh": 424.0},
     {"target_kw": -100.0, "active_modes": ["charge_to_soe"], "effective_modes": ["charge_to_soe"],
      "constraints": []}),
    ("site import limit: nothing proposed, the envelope discharges to stay at 300 kW",
     {"time": "2026-06-03T23:30:00+01:00", "site_power_kw": 280.0, "bess_soe_kwh": 500.0,
      "bess_last_target_kw": 60.0},
     {"target_kw": 40.0, "active_modes": [], "effective_modes": [], "constraints": ["site_import"]}),
]


# The demo site's `plan` mode (ours; the reference example has none, so these rows are not shared with the
# import-legacy test). The plan as `flux-edge plan --json` prints it: 12:00-12:30 BST ends at 450 kWh,
# 12:30-13:00 at 600 kWh.
DEMO_PLAN = {"plan_id": "demo-plan", "created_at": "2026-06-03T12:00:00+01:00", "period_h": 0.5,
             "periods": [{"start": "2026-06-03T12:00:00+01:00", "soe_end_kwh": 450.0},
                         {"start": "2026-06-03T12:30:00+01:00", "soe_end_kwh": 600.0}]}

PLAN_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("plan: 50 kWh to lose in the 20 min left of the period: discharge 150 kW",
     {"time": "2026-06-03T12:10:00+01:00", "site_power_kw": 20.0, "bess_soe_kwh": 500.0, "plan": DEMO_PLAN},
     {"target_kw": 150.0, "active_modes": ["plan", "export_avoidance"], "effective_modes": ["plan"],
      "constraints": []}),
    ("plan: 100 kWh to gain in 15 min at 92 %: 434.8 kW pinned over the peak approach's 228, limited to 250",
     {"time": "2026-06-03T12:45:00+01:00", "site_power_kw": 20.0, "bess_soe_kwh": 500.0, "plan": DEMO_PLAN},
     {"target_kw": -250.0, "active_modes": ["plan", "dynamic_peak_approach", "export_avoidance"],
      "effective_modes": ["plan"], "constraints": ["bess_power"]}),
    ("plan: older than max_plan_age_s (1 h): inactive, the peak approach decides as without a plan",
     {"time": "2026-06-03T13:05:00+01:00", "site_power_kw": -40.0, "bess_soe_kwh": 500.0, "plan": DEMO_PLAN},
     {"target_kw": -250.0, "active_modes": ["dynamic_peak_approach", "export_avoidance"],
      "effective_modes": ["dynamic_peak_approach"], "constraints": ["bess_power"]}),
    ("plan under axle: Axle's charge_max wins over the plan's discharge",
     {"time": "2026-06-03T12:10:00+01:00", "site_power_kw": 20.0, "bess_soe_kwh": 500.0, "plan": DEMO_PLAN,
      "axle_schedule": [{"start": "2026-06-03T12:00:00+01:00", "end": "2026-06-03T12:30:00+01:00",
                         "action": "charge_max"}]},
     {"target_kw": -250.0, "active_modes": ["axle", "plan", "export_avoidance"], "effective_modes": ["axle"],
      "constraints": ["bess_power"]}),
]


def matches(answer: dict[str, Any], expected: dict[str, Any]) -> bool:
    if set(answer) != {"target_kw", "active_modes", "effective_modes", "constraints", "reason"}:
        return False
    if abs(answer["target_kw"] - expected["target_kw"]) > 1e-6:
        return False
    return all(answer[k] == v for k, v in expected.items() if k != "target_kw")
