"""Generate the demo site's synthetic half-hour history (the spec's history CSV) from the simulator's
physical model, for forecasters and their evaluation to be measured on.

    PYTHONPATH=$PWD .venv/bin/python scripts/gen_history.py [--site config/sites/demo.yaml] \
        [--start 2026-03-02 --end 2026-11-23] [--seed 42] [--out simulator/data/demo_history.csv.gz]

Deterministic for a seed. What varies, and why each matters to a forecaster:
- the load is `simulator.physics.SiteProfile.load_kw` (the simulated site's daily shape and its
  noise), scaled per day by a heating term (colder in March and November), a day-to-day temperature
  anomaly that persists over days (AR(1), so yesterday says something about today), and a per-day
  occupancy factor; weekends and England & Wales bank holidays lose the morning peak's commute and
  gain a daytime bump; an intraday AR(1) residual (weather, occupancy) persists over a few hours;
- solar is `SiteProfile.solar_kw` scaled by the season (day length and elevation) and a day's
  cloudiness (AR(1) across days);
- the battery is `simulator.physics.BatteryModel` (ramps, efficiency, limits), driven by a simple
  rule controller: charge 01:00-04:00 to 700 kWh, weekday peak discharge 16:00-19:00 to 150 kWh,
  and on weekends discharge above 15 p/kWh and charge below 3 p/kWh;
- the imbalance price follows the diurnal shape of simulator/data/modo_day.csv (smoothed), with a
  day level (AR(1) across days, higher in winter, lower at weekends), an intraday anomaly persisting
  over hours (AR(1), phi 0.93 per half hour) and rare spikes; the volume (NIV) follows the anomaly.
- one outage: the site and battery meters are missing (empty cells) for 40 hours in August.
Every day is built in real time from local midnight, so the clock-change days have 46 and 50
periods; the period starts are written in local time with their offset.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import math
import random
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import load_site
from controller.engine.schedule import zone
from controller.engine.settlement import SP_S, gb_midnight, sp_of
from controller.forecast.holidays import day_type, is_bank_holiday
from controller.forecast.rows import COLUMNS, PeriodRow, format_row
from simulator.config import SiteModelConfig
from simulator.market import load_day
from simulator.physics import BatteryModel, BatteryParams, SiteProfile

STEP_S = 60  # battery and meters integrated minute by minute
TZ = zone("Europe/London")


@dataclass
class DayWeather:
    heat: float  # load multiplier from heating
    occupancy: float
    cloud: float  # 0 clear .. 1 overcast
    price_level: float  # p/kWh added to the day's shape


def season(day: date) -> float:
    """+1 mid-winter .. -1 mid-summer (cosine of the day of year, peak on 10 January)."""
    return math.cos(2 * math.pi * (day.timetuple().tm_yday - 10) / 365.25)


def daylight(day: date) -> float:
    """Solar peak scale by season: about 0.35 in December, 1.0 in late June."""
    return 0.675 - 0.325 * season(day)


def price_shape() -> list[float]:
    raw = [p / 10.0 for p, _ in load_day()]  # GBP/MWh -> p/kWh
    n = len(raw)
    return [(raw[(i - 1) % n] + 2 * raw[i] + raw[(i + 1) % n]) / 4 for i in range(n)]


def weather(days: list[date], rng: random.Random) -> dict[date, DayWeather]:
    out: dict[date, DayWeather] = {}
    temp = cloud = level = 0.0
    for d in days:
        temp = 0.8 * temp + rng.gauss(0, 0.6)
        cloud = 0.6 * cloud + rng.gauss(0, 0.5)
        level = 0.7 * level + rng.gauss(0, 1.0)
        heat = 1.0 + 0.18 * season(d) - 0.07 * temp
        occupancy = rng.gauss(1.0, 0.04) * (1.08 if day_type(d) >= 5 else 1.0)
        weekend = 0.8 if day_type(d) >= 5 else 1.0
        out[d] = DayWeather(heat, occupancy, 1 / (1 + math.exp(-2 * cloud)),
                            (2.0 * season(d) + level) * weekend + (weekend - 1.0) * 5)
    return out


def setpoint(local: datetime, soe: float, price: float) -> float:
    """The rule controller (kW, + = discharge)."""
    h = local.hour + local.minute / 60
    weekend = day_type(local.date()) >= 5
    if 1 <= h < 4:
        return -200.0 if soe < 700 else 0.0
    if not weekend and 16 <= h < 19:
        return 150.0 if soe > 150 else 0.0
    if weekend and price > 15 and soe > 150:
        return 200.0
    if weekend and price < 3 and soe < 900:
        return -200.0
    return 0.0


def generate(site: str, start: date, end: date, seed: int) -> tuple[list[PeriodRow], str]:
    config = load_site(site, defer_secrets=True).config  # the site model and limits only: no secret used
    assert config.simulator is not None and config.controller is not None
    model = config.simulator.site_model
    bess = config.device(config.controller.battery)
    rng = random.Random(seed)
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    wx = weather(days, rng)
    shape = price_shape()
    battery = BatteryModel(BatteryParams(float(bess.nameplate_power_kw), float(bess.nameplate_energy_kwh),  # type: ignore[attr-defined]
                                         float(bess.ramp_up_kw_per_s), float(bess.ramp_down_kw_per_s),  # type: ignore[attr-defined]
                                         model.charge_efficiency),
                           soe_kwh=model.initial_soe_kwh or 500.0, t=gb_midnight(start).timestamp())
    battery.real_power_mode = 1
    battery.command_timeout_s = 2 * STEP_S  # one heartbeat per step keeps it following the rule
    outage = (gb_midnight(date(start.year, 8, 12)), gb_midnight(date(start.year, 8, 12)) + timedelta(hours=40))
    rows: list[PeriodRow] = []
    resid = anomaly = spike = 0.0
    profiles: dict[date, SiteProfile] = {}
    t0, t_end = gb_midnight(start), gb_midnight(end)
    beat = 0
    for k in range(int((t_end - t0).total_seconds() // SP_S)):
        ps = t0 + timedelta(seconds=k * SP_S)
        local = ps.astimezone(TZ)
        day, number = sp_of(ps)
        w = wx[day]
        if day not in profiles:
            profiles[day] = SiteProfile(SiteModelConfig(
                base_load_kw=model.base_load_kw * w.heat * w.occupancy,
                peak_load_kw=model.peak_load_kw * w.heat * w.occupancy,
                solar_peak_kw=model.solar_peak_kw * daylight(day) * (1 - 0.75 * w.cloud),
                noise_kw=model.noise_kw), seed=seed)
        profile = profiles[day]
        resid = 0.9 * resid + rng.gauss(0, 3.0)
        anomaly = 0.93 * anomaly + rng.gauss(0, 1.2)
        spike = 0.6 * spike + (rng.uniform(15, 60) if rng.random() < 0.006 else 0.0)
        h = local.hour + local.minute / 60
        holiday_like = day_type(day) >= 5
        price = shape[(number - 1) % 48] * (0.85 if holiday_like else 1.0) + w.price_level + anomaly + spike
        niv = 35 * (anomaly + spike) + rng.gauss(0, 110)
        imp = exp = chg = dis = solar = 0.0
        for s in range(SP_S // STEP_S):
            t = ps.timestamp() + (s + 0.5) * STEP_S
            load = profile.load_kw(t) + resid
            if holiday_like:
                # No commute, people at home: less at 07:30, more through the day.
                load += model.peak_load_kw * w.occupancy * (0.22 * math.exp(-((h - 12.5) ** 2) / 8)
                                                            - 0.15 * math.exp(-((h - 7.5) ** 2) / 2))
            load = max(0.0, load)
            pv = profile.solar_kw(t)
            beat += 1
            battery.write_heartbeat(0xAA55 if beat % 2 else 0x55AA, battery.t)
            battery.write_setpoint(setpoint(local, battery.soe_kwh, price))
            step = battery.step(STEP_S)
            site_kw = load - pv - step.power_kw
            hours = STEP_S / 3600
            imp += max(site_kw, 0.0) * hours
            exp += max(-site_kw, 0.0) * hours
            chg += max(-step.power_kw, 0.0) * hours
            dis += max(step.power_kw, 0.0) * hours
            solar += pv * hours
        if outage[0] <= ps < outage[1]:
            rows.append(PeriodRow(ps, solar_kwh=solar, imbalance_price_p_per_kwh=price, imbalance_volume_mwh=niv))
            continue
        rows.append(PeriodRow(ps, imp, exp, chg, dis, battery.soe_kwh, solar, price, niv))
    holidays = [d.isoformat() for d in days if is_bank_holiday(d)]
    note = (f"# SYNTHETIC data, not measurements: the demo site ({config.site.id}) from the simulator model,\n"
            f"# generated by scripts/gen_history.py --seed {seed} --start {start} --end {end} (see its docstring).\n"
            f"# One row per settlement period ({len(rows)} rows), period_start local time with offset.\n"
            f"# England & Wales bank holidays in range: {', '.join(holidays) or 'none'}.\n"
            f"# Clock changes in range are real-time days of 46 and 50 periods. Outage (empty meter cells):\n"
            f"# {outage[0].isoformat()} .. {outage[1].isoformat()}.\n"
            f"# Units: kWh per half-hour, SoE kWh, price p/kWh, volume MWh (+ = system short).\n")
    return rows, note


def write_csv(rows: list[PeriodRow], note: str, out: Path) -> None:
    buf = io.StringIO()
    buf.write(note)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(format_row(r, TZ))
    data = buf.getvalue().encode()
    if out.suffix == ".gz":
        # mtime=0: the same seed gives the same bytes.
        with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
            gz.write(data)
    else:
        out.write_bytes(data)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--site", default="config/sites/demo.yaml")
    p.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 2))
    p.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 23), help="exclusive")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=Path("simulator/data/demo_history.csv.gz"))
    args = p.parse_args()
    rows, note = generate(args.site, args.start, args.end, args.seed)
    write_csv(rows, note, args.out)
    print(f"{args.out}: {len(rows)} periods, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
