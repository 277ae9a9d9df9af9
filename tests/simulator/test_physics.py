"""The simulated battery and site, checked directly (pure, no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import SiteConfig
from simulator.physics import (
    HEARTBEAT_VALUES,
    PHASE_SHARES,
    BatteryModel,
    BatteryParams,
    MeterState,
    SiteModel,
    SiteProfile,
)

PARAMS = BatteryParams(power_kw=250, energy_kwh=1000, ramp_up_kw_per_s=50, ramp_down_kw_per_s=80,
                       charge_efficiency=0.9)
T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC).timestamp()

Action = tuple[str, float, float]
actions = st.lists(
    st.tuples(
        st.sampled_from(["command", "command", "command", "heartbeat_only", "nothing", "mode_off"]),
        st.floats(-600, 600, allow_nan=False),  # setpoint kW, well beyond nameplate both ways
        st.floats(0.05, 4.0),  # seconds until the next action
    ),
    min_size=1, max_size=60,
)


def _commanded(soe: float, timeout_s: float = 10) -> BatteryModel:
    b = BatteryModel(PARAMS, soe, T0)
    b.command_timeout_s = timeout_s
    b.real_power_mode = 1
    return b


@settings(max_examples=200, deadline=None)
@given(actions, st.floats(0, 1000), st.integers(2, 15))
def test_battery_respects_limits_and_heartbeat_timeout(seq: list[Action], soe0: float, timeout_s: int) -> None:
    b = _commanded(soe0, timeout_s)
    beat = 0
    for kind, kw, wait in seq:
        if kind == "command":
            b.write_heartbeat(HEARTBEAT_VALUES[beat % 2], b.t)
            beat += 1
            b.write_setpoint(kw)
        elif kind == "heartbeat_only":
            b.write_heartbeat(HEARTBEAT_VALUES[beat % 2], b.t)
            beat += 1
        elif kind == "mode_off":
            b.real_power_mode = 0
        remaining = wait
        while remaining > 1e-12:
            dt = min(1.0, remaining)
            remaining -= dt
            before_p, before_soe = b.power_kw, b.soe_kwh
            step = b.step(dt)
            p = step.power_kw
            assert -PARAMS.power_kw - 1e-9 <= p <= PARAMS.power_kw + 1e-9
            assert -1e-9 <= b.soe_kwh <= PARAMS.energy_kwh + 1e-9
            silent_for = b.t - b.heartbeat_changed_at if b.heartbeat_changed_at is not None else float("inf")
            if silent_for > timeout_s or b.real_power_mode != 1:
                assert p == 0.0  # idles by itself: no heartbeat, or not in direct-power mode
            else:
                ramp_limit = max(PARAMS.ramp_up_kw_per_s, PARAMS.ramp_down_kw_per_s) * dt + 1e-6
                if abs(p - before_p) > ramp_limit:
                    # Only running empty (or full) may cut the power faster than the ramp.
                    assert abs(p) < abs(before_p)
                    assert b.soe_kwh < 1e-9 if before_p > 0 else b.soe_kwh > PARAMS.energy_kwh - 1e-9
                target = step.target_kw
                assert min(before_p, target, 0.0) - 1e-9 <= p <= max(before_p, target, 0.0) + 1e-9
            # Energy accounting: discharge takes p·dt out, charge stores eff·|p|·dt.
            expected = before_soe - p * dt / 3600 if p >= 0 else before_soe - p * PARAMS.charge_efficiency * dt / 3600
            assert abs(b.soe_kwh - expected) < 1e-6


def test_follows_setpoint_at_ramp_rate_then_idles_after_timeout() -> None:
    b = _commanded(500, timeout_s=10)
    b.write_heartbeat(0xAA55, b.t)
    b.write_setpoint(-200)  # charge
    powers = [b.step(1.0).power_kw for _ in range(5)]
    assert powers == [-50, -100, -150, -200, -200]
    # 0.9 efficiency: 50+100+150+200+200 kW·s drawn = 700/3600 kWh, 0.9 of it stored.
    assert abs(b.soe_kwh - (500 + 0.9 * 700 / 3600)) < 1e-9
    for _ in range(5):
        b.step(1.0)
    assert b.power_kw == -200  # 10 s since the heartbeat: still inside the timeout
    b.step(1.0)
    assert b.power_kw == 0.0


def test_ignores_setpoints_outside_direct_power_mode() -> None:
    b = BatteryModel(PARAMS, 500, T0)
    b.write_heartbeat(0xAA55, b.t)
    b.write_setpoint(100)
    assert b.step(1.0).power_kw == 0.0
    b.real_power_mode = 1
    assert b.step(1.0).power_kw == 50


def test_stops_discharging_when_empty() -> None:
    b = _commanded(0.01, timeout_s=600)
    b.write_heartbeat(0xAA55, b.t)
    b.write_setpoint(250)
    total = 0.0
    for _ in range(20):
        total += b.step(1.0).power_kw / 3600
    assert b.soe_kwh == 0.0 and abs(total - 0.01) < 1e-9
    assert b.power_kw == 0.0


def _site(seed: int = 7) -> SiteModel:
    sim = SiteConfig.model_validate({"site": {"id": "t", "name": "t"}, "simulator": {"seed": seed},
                                     "devices": [{"type": "acuvim2", "name": "m", "id":
                                                  "7b0d0c6e-5d2a-4c43-9a57-000000000002", "host": "h", "port": 1}]})
    assert sim.simulator is not None
    profile = SiteProfile(sim.simulator.site_model, seed)
    b = _commanded(500, timeout_s=600)
    return SiteModel(profile, T0, {"bess": b}, {"site": MeterState("site"), "bm": MeterState("battery")})


def test_site_meter_is_load_minus_solar_minus_battery_and_energies_integrate() -> None:
    site = _site()
    bess = site.batteries["bess"]
    bess.write_heartbeat(0xAA55, site.t)
    bess.write_setpoint(100)
    steps = site.advance_to(T0 + 600)
    assert len(steps) == 600
    for s in steps:
        assert abs(s.site_kw - (s.load_kw - s.solar_kw - s.battery_kw)) < 1e-9
    assert steps[-1].battery_kw == 100 and steps[-1].solar_kw > 0
    m = site.meters["site"]
    net = sum(s.site_kw for s in steps) / 3600
    assert abs((m.imported_kwh - m.exported_kwh) - net) < 1e-6
    assert abs(sum(m.phase_imported_kwh) - m.imported_kwh) < 1e-6
    assert abs(sum(m.phase_exported_kwh) - m.exported_kwh) < 1e-6
    assert abs(sum(m.phase_power_kw()) - m.power_kw) < 1e-9
    assert abs(sum(PHASE_SHARES) - 1) < 1e-12
    bm = site.meters["bm"]
    assert abs(bm.imported_kwh - sum(s.battery_kw for s in steps) / 3600) < 1e-6


def test_profiles_are_deterministic_for_a_seed() -> None:
    a, b, c = _site(7), _site(7), _site(8)
    a.advance_to(T0 + 120)
    # Stepping in other chunks gives the same site: the model does not depend on how often it is read.
    for k in range(1, 7):
        b.advance_to(T0 + 20 * k)
    c.advance_to(T0 + 120)
    assert a.load_kw == b.load_kw and a.meters["site"].imported_kwh == b.meters["site"].imported_kwh
    assert a.load_kw != c.load_kw
