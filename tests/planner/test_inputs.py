"""Building the LP's inputs: the horizon, the fallbacks for missing data (named in the notes), Axle windows,
the persistence stand-in forecast, price files and the site file's `planner:` block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config.loader import ConfigError, load_site
from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast
from controller.engine.envelope import Limits
from controller.engine.site_state import AxleStep
from controller.planner.config import PlannerConfig
from controller.planner.history import HistoryError, parse_history
from controller.planner.inputs import build_inputs, horizon_starts
from controller.planner.model import Commitment
from controller.planner.persistence import persistence_forecast
from controller.planner.prices import PriceFileError, parse_prices

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 3, 12, 10, tzinfo=UTC)  # 13:10 BST: SP 27 started at 12:00 UTC
LIMITS = Limits(250, 250, 300, 350, 50, 950, 30, site_margin_kw=10.0, charge_efficiency=0.92)


def forecast(starts: tuple[datetime, ...], price: float | None, load: float | None) -> Forecast:
    values = {**({PRICE: Band.exact(price)} if price is not None else {}),
              **({NET_LOAD: Band.exact(load)} if load is not None else {})}
    return Forecast(NOW, tuple(PeriodForecast(s, values) for s in starts))


def test_the_horizon_starts_at_the_current_period_and_its_first_period_is_what_is_left() -> None:
    starts = horizon_starts(NOW, 48)
    assert len(starts) == 96 and starts[0] == datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    x = build_inputs(PlannerConfig(horizon_h=2), LIMITS, NOW, 500.0, forecast(horizon_starts(NOW, 2), 10.0, 20.0))
    assert x.n == 4 and x.first_period_h == pytest.approx(20 / 60)
    assert (x.import_kw, x.export_kw) == (290.0, 340.0)  # the envelope's margin kept
    assert x.terminal_p_per_kwh == 10.0  # default: the mean price
    assert x.assumptions == ()


def test_missing_prices_and_loads_are_assumed_and_said() -> None:
    starts = horizon_starts(NOW, 2)
    partial = Forecast(NOW, (PeriodForecast(starts[0], {PRICE: Band.exact(7.0), NET_LOAD: Band.exact(5.0)}),))
    x = build_inputs(PlannerConfig(horizon_h=2), LIMITS, NOW, 500.0, partial)
    assert x.price_p_per_kwh == (7.0,) * 4 and x.net_load_kw == (5.0,) * 4
    assert any(n.startswith("price_p_per_kwh: 3 of 4 periods missing") for n in x.assumptions)
    y = build_inputs(PlannerConfig(horizon_h=2, default_price_p_per_kwh=12.0), LIMITS, NOW, 500.0, partial)
    assert y.price_p_per_kwh == (7.0, 12.0, 12.0, 12.0)


def test_absurd_prices_are_clipped_and_said() -> None:
    x = build_inputs(PlannerConfig(horizon_h=1), LIMITS, NOW, 500.0, forecast(horizon_starts(NOW, 1), -1e6, 0.0))
    assert x.price_p_per_kwh == (-1000.0, -1000.0)
    assert any("clipped" in n for n in x.assumptions)


def test_a_schedule_file_overrides_the_forecast() -> None:
    starts = horizon_starts(NOW, 1)
    x = build_inputs(PlannerConfig(horizon_h=1), LIMITS, NOW, 500.0, forecast(starts, 10.0, 0.0),
                     prices={starts[1]: 33.0})
    assert x.price_p_per_kwh == (10.0, 33.0)


def test_axle_steps_become_commitments_with_the_share_of_the_period_they_cover() -> None:
    starts = horizon_starts(NOW, 2)
    step = AxleStep(starts[1] + timedelta(minutes=15), starts[3], "discharge_max")
    x = build_inputs(PlannerConfig(horizon_h=2), LIMITS, NOW, 500.0, forecast(starts, 10.0, 0.0), axle=[step])
    assert x.commitments == (None, Commitment("discharge_max", 0.5), Commitment("discharge_max", 1.0), None)


HISTORY = """# a comment
period_start,site_import_kwh,site_export_kwh,battery_charge_kwh,battery_discharge_kwh,soe_end_kwh,imbalance_price_p_per_kwh,imbalance_volume_mwh
2026-05-27T12:00:00+00:00,60,0,10,0,500,8.5,1
2026-05-27T12:30:00+00:00,60,0,0,20,480,,
2026-06-02T12:00:00+00:00,40,0,0,0,480,11.0,-2
2026-06-03T11:30:00+00:00,30,0,0,0,480,9.0,
"""


def test_persistence_takes_last_week_for_load_and_the_median_of_the_week_for_price() -> None:
    rows = parse_history(HISTORY.splitlines(keepends=True))
    # Battery removed: charging came in through the site meter, discharging covered some of the load.
    assert rows[0].net_load_kw == 2 * (60 - 10) and rows[1].net_load_kw == 2 * (60 + 20)
    starts = horizon_starts(NOW, 1)  # 12:00 and 12:30 UTC today
    f = persistence_forecast(rows, NOW, starts)
    first, second = f.periods
    assert first.get(NET_LOAD) == Band.exact(100.0)  # same time last week
    assert first.get(PRICE) == Band.exact((11.0 + 8.5) / 2)  # the median of the same half-hour this week
    assert second.get(NET_LOAD) == Band.exact(160.0)
    assert second.get(PRICE) == Band.exact(9.0)  # no same half-hour with a price: the latest known


def test_persistence_uses_only_what_has_ended_by_then() -> None:
    rows = parse_history(HISTORY.splitlines(keepends=True))
    f = persistence_forecast(rows, datetime(2026, 6, 3, 11, 45, tzinfo=UTC), [datetime(2026, 6, 3, 12, 30, tzinfo=UTC)])
    assert f.periods[0].get(PRICE) == Band.exact(11.0)  # 11:30's 9.0 is not known at 11:45: 06-02 12:00's is


def test_a_bad_history_row_is_named() -> None:
    header = HISTORY.splitlines(keepends=True)[1]
    with pytest.raises(HistoryError, match=r"^h\.csv:2: .*site_import_kwh.*lots"):
        parse_history([header, "2026-06-03T12:00:00Z,lots,0,0,0,1,2,3\n"], "h.csv")
    with pytest.raises(HistoryError, match=r"^h\.csv:1: header lacks column"):
        parse_history(["period_start,site_import_kwh\n"], "h.csv")


@pytest.mark.parametrize(("text", "expected"), [
    ("period_start,price_p_per_kwh\n2026-06-03T12:00:00Z,9.5\n2026-06-03T12:30:00Z,nan\n",
     {datetime(2026, 6, 3, 12, 0, tzinfo=UTC): 9.5}),
    ('[{"period_start": "2026-06-03T12:00:00Z", "price_p_per_kwh": -3}]', {datetime(2026, 6, 3, 12, 0, tzinfo=UTC): -3.0}),
    ('{"prices": []}', {}),
])
def test_price_files(text: str, expected: dict[datetime, float]) -> None:
    assert parse_prices(text, "p") == expected


@pytest.mark.parametrize(("text", "message"), [("{", "not JSON"), ("a,b\n1,2\n", "header row"),
                                               ('[{"period_start": "x", "price_p_per_kwh": 1}]', "entry 0"),
                                               ('[{"period_start": "2026-06-03T12:00:00Z", "price_p_per_kwh": "hi"}]',
                                                "not a number")])
def test_garbage_price_files_are_named(text: str, message: str) -> None:
    with pytest.raises(PriceFileError, match=message):
        parse_prices(text, "p")


def _site_with(tmp_path: Path, block: str) -> Path:
    """The demo site with its planner block replaced by `block`."""
    text = (ROOT / "config" / "sites" / "demo.yaml").read_text()
    head, rest = text.split("\nplanner:\n", 1)
    tail = rest[rest.index("\nmarket:"):]
    path = tmp_path / "site.yaml"
    path.write_text(head + tail + block)
    return path


def test_the_planner_block_validates_in_the_site_file(tmp_path: Path) -> None:
    site = load_site(_site_with(tmp_path, """
planner:
  price: {type: schedule, path: prices.csv}
  throughput_cost_gbp_per_mwh: 20
  band: {low_kwh: 100, high_kwh: 900, breach_p_per_kwh_h: 2}
  terminal_value_p_per_kwh: 8
""")).config
    assert site.planner is not None and site.planner.throughput_p_per_kwh == 2.0
    assert site.planner.horizon_h == 48


@pytest.mark.parametrize(("block", "where"), [
    ("planner:\n  band: {low_kwh: 10, high_kwh: 900, breach_p_per_kwh_h: 2}\n", "planner.band.low_kwh"),
    ("planner:\n  band: {low_kwh: 600, high_kwh: 500, breach_p_per_kwh_h: 2}\n", "planner.band.low_kwh"),
    ("planner:\n  price: {type: octopus}\n", "planner.price"),
    ("planner:\n  price: {type: http, url: 'ftp://feed'}\n", "planner.price"),
    ("planner:\n  throughput_cost_gbp_per_mwh: -1\n", "planner.throughput_cost_gbp_per_mwh"),
])
def test_bad_planner_blocks_are_named(tmp_path: Path, block: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_site(_site_with(tmp_path, block))
    assert any(where in str(p) for p in err.value.problems), [str(p) for p in err.value.problems]


AGILE = {"results": [
    {"valid_from": "2026-06-03T12:30:00Z", "valid_to": "2026-06-03T13:00:00Z", "value_exc_vat": 20.0,
     "value_inc_vat": 21.0},
    {"valid_from": "2026-06-03T12:00:00Z", "valid_to": "2026-06-03T13:00:00Z", "value_exc_vat": 10.0,
     "value_inc_vat": 10.5},  # an hour: both half-hours (the entry above is listed first and then overwritten)
    {"valid_from": "2026-06-03T13:00:00Z", "valid_to": "2026-06-03T13:30:00Z", "value_exc_vat": None},
]}


def test_an_agile_answer_as_half_hour_prices() -> None:
    from controller.planner.prices import parse_agile

    h12, h1230 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC), datetime(2026, 6, 3, 12, 30, tzinfo=UTC)
    assert parse_agile(AGILE) == {h12: 10.0, h1230: 10.0}
    assert parse_agile(AGILE, "value_inc_vat")[h12] == 10.5


@pytest.mark.parametrize(("status", "text", "message"), [
    (500, "", "HTTP 500"), (200, "<html>", "not JSON"), (200, '{"count": 3}', "results"),
    (200, '{"results": [{"valid_from": "soon", "value_exc_vat": 1}]}', "results.0"),
])
def test_a_garbage_agile_answer_is_named(status: int, text: str, message: str) -> None:
    from controller.planner.prices import agile_answer

    with pytest.raises(PriceFileError, match=message):
        agile_answer(status, text, "http://feed", "value_exc_vat")


@st.composite
def site_inputs(draw: st.DrawFn) -> tuple[Forecast, float, list[AxleStep]]:
    starts = horizon_starts(NOW, 3)
    periods = []
    for s in starts:
        values = {}
        if draw(st.booleans()):
            values[PRICE] = Band.exact(draw(st.floats(-1e6, 1e6)))
        if draw(st.booleans()):
            values[NET_LOAD] = Band.exact(draw(st.floats(-1000, 1000)))
        periods.append(PeriodForecast(s, values))
    steps = []
    for _ in range(draw(st.integers(0, 3))):
        a = NOW + timedelta(minutes=draw(st.integers(-60, 180)))
        steps.append(AxleStep(a, a + timedelta(minutes=draw(st.integers(1, 120))),
                              draw(st.sampled_from(["charge_max", "discharge_max", "avoid_import", "avoid_export",
                                                    "dance"]))))
    return Forecast(NOW, tuple(periods)), draw(st.floats(0, 1200)), steps


@settings(max_examples=150, deadline=None)
@given(site_inputs())
def test_any_forecast_soe_and_axle_schedule_give_a_plan_within_limits_or_naming_its_breach(
        case: tuple[Forecast, float, list[AxleStep]]) -> None:
    from controller.planner.solver import Solver

    forecast, soe, steps = case
    x = build_inputs(PlannerConfig(horizon_h=3), LIMITS, NOW, soe, forecast, axle=steps)
    plan = Solver().plan(x)
    named = {(b.kind, b.period) for b in plan.breaches}
    for t, p in enumerate(plan.periods):
        assert -LIMITS.charge_kw - 1e-4 <= p.battery_kw <= LIMITS.discharge_kw + 1e-4
        assert p.site_kw <= x.import_kw + 1e-4 or ("site_import_limit", t) in named
        assert p.site_kw >= -x.export_kw - 1e-4 or ("site_export_limit", t) in named
        assert LIMITS.soe_min_kwh - 1e-4 <= p.soe_end_kwh or ("soe_below_min", t) in named
        assert p.soe_end_kwh <= LIMITS.soe_max_kwh + 1e-4 or ("soe_above_max", t) in named
    assert all(-1000 <= p.price_p_per_kwh <= 1000 for p in plan.periods)  # clipped, and said so
