"""`flux-edge decide --site FILE --state STATE.json`: one pure decision, printed as one JSON object."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.commands.common import load_site_or_report
from controller.core import bounded
from controller.core.clock import parse_utc
from controller.core.logs import configure_logging
from controller.engine.decision import record_body
from controller.engine.explain import explain
from controller.engine.schedule import zone
from controller.engine.site_state import AxleStep, MarketValue, PlanTargets, SiteState


class StateError(ValueError):
    pass


# The state's keys (README "The decide state"); any other key is reported on stderr and ignored.
STATE_KEYS = frozenset({"time", "site_power_kw", "bess_soe_kwh", "bess_last_target_kw", "bess_power_kw",
                        "imbalance_price", "imbalance_volume", "axle_schedule", "plan", "data_age_s"})
AGE_KEYS = frozenset({"site_power_kw", "bess_soe_kwh", "bess_power_kw"})


def unknown_keys(data: Any) -> list[str]:
    """Dotted names of the keys a decide state has that the format does not know (typos, mostly)."""
    if not isinstance(data, dict):
        return []
    out = sorted(str(k) for k in data if k not in STATE_KEYS)
    ages = data.get("data_age_s")
    if isinstance(ages, dict):
        out += sorted(f"data_age_s.{k}" for k in ages if k not in AGE_KEYS)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE")
    p.add_argument("--state", required=True, metavar="STATE.json", help="the site state ('-' for stdin)")


MAX_STATE_BYTES = 1024 * 1024
MAX_STATE_DEPTH = 16
MAX_AXLE_STEPS = 1000
# Times far from now are refused: the engine adds days and periods to them (year 1 and 9999 overflowed).
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise StateError(f"{where}: expected an ISO 8601 time with an offset")
    try:
        t = parse_utc(value)
    except (ValueError, OverflowError) as exc:
        raise StateError(f"{where}: {exc}") from None
    if not EARLIEST <= t <= LATEST - timedelta(days=1):
        raise StateError(f"{where}: {value} is outside {EARLIEST.year}..{LATEST.year}")
    return t


def _number(value: Any, where: str, *, required: bool = False) -> float | None:
    if value is None:
        if required:
            raise StateError(f"{where}: required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateError(f"{where}: expected a finite number")
    try:
        number = float(value)
    except OverflowError:
        raise StateError(f"{where}: number out of range") from None
    if not math.isfinite(number) or abs(number) > 1e12:
        raise StateError(f"{where}: expected a finite number within +-1e12")
    return number


def _market(value: Any, where: str) -> MarketValue | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StateError(f"{where}: expected {{value, settlement_period}}")
    number = _number(value.get("value"), f"{where}.value", required=True)
    assert number is not None
    return MarketValue(number, _time(value.get("settlement_period"), f"{where}.settlement_period"))


def _plan(value: Any) -> PlanTargets | None:
    """The optional `plan` key: a plan as `flux-edge plan --json` prints it (plan_id, created_at, periods
    with start and soe_end_kwh; period_h, default 0.5)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("plan_id"), str):
        raise StateError("plan: expected a plan as `flux-edge plan --json` prints it")
    periods = value.get("periods")
    if not isinstance(periods, list):
        raise StateError("plan.periods: expected a list")
    targets = []
    for i, p in enumerate(periods):
        if not isinstance(p, dict):
            raise StateError(f"plan.periods.{i}: expected {{start, soe_end_kwh}}")
        soe = _number(p.get("soe_end_kwh"), f"plan.periods.{i}.soe_end_kwh", required=True)
        assert soe is not None
        targets.append((_time(p.get("start"), f"plan.periods.{i}.start"), soe))
    hours = _number(value.get("period_h"), "plan.period_h") or 0.5
    if hours <= 0:
        raise StateError("plan.period_h: must be positive")
    return PlanTargets(value["plan_id"], _time(value.get("created_at"), "plan.created_at"), hours * 3600.0,
                       tuple(targets))


def parse_state(data: Any) -> tuple[datetime, SiteState]:
    """The spec's decide state as (now, SiteState). Raises StateError naming the bad field."""
    if not isinstance(data, dict):
        raise StateError("the state must be a JSON object")
    now = _time(data.get("time"), "time")
    ages = data.get("data_age_s") or {}
    if not isinstance(ages, dict):
        raise StateError("data_age_s: expected an object")
    steps = []
    schedule = data.get("axle_schedule") or []
    if not isinstance(schedule, list):
        raise StateError("axle_schedule: expected a list of {start, end, action}")
    if len(schedule) > MAX_AXLE_STEPS:
        raise StateError(f"axle_schedule: more than {MAX_AXLE_STEPS} steps")
    for i, item in enumerate(schedule):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            raise StateError(f"axle_schedule.{i}: expected {{start, end, action}}")
        steps.append(AxleStep(_time(item.get("start"), f"axle_schedule.{i}.start"),
                              _time(item.get("end"), f"axle_schedule.{i}.end"), item["action"],
                              bool(item.get("allow_deviation", False))))
    state = SiteState(
        site_power_kw=_number(data.get("site_power_kw"), "site_power_kw", required=True),
        soe_kwh=_number(data.get("bess_soe_kwh"), "bess_soe_kwh", required=True),
        last_setpoint_kw=_number(data.get("bess_last_target_kw"), "bess_last_target_kw") or 0.0,
        site_power_age_s=_number(ages.get("site_power_kw"), "data_age_s.site_power_kw") or 0.0,
        soe_age_s=_number(ages.get("bess_soe_kwh"), "data_age_s.bess_soe_kwh") or 0.0,
        imbalance_price=_market(data.get("imbalance_price"), "imbalance_price"),
        imbalance_volume=_market(data.get("imbalance_volume"), "imbalance_volume"),
        axle_schedule=tuple(steps),
        plan=_plan(data.get("plan")),
        # Optional: the battery's measured power (+ discharge) and its age; without it the envelope
        # takes the battery to be at bess_last_target_kw or idled by its own timeout.
        battery_power_kw=_number(data.get("bess_power_kw"), "bess_power_kw"),
        battery_power_age_s=_number(ages.get("bess_power_kw"), "data_age_s.bess_power_kw") or 0.0,
    )
    return now, state


def run(args: argparse.Namespace) -> int:
    # stdout carries exactly one JSON answer: log lines (a mode's error, say) go to stderr.
    configure_logging("json", "warning", sys.stderr)
    site = load_site_or_report(args.site, defer_secrets=True)
    if site is None:
        return 2
    if site.controller is None:
        print(f"{args.site}: the site file has no controller section", file=sys.stderr)
        return 2
    try:
        raw = (sys.stdin.buffer.read(MAX_STATE_BYTES + 1) if args.state == "-"
               else _read_bounded(Path(args.state)))
        data = bounded.loads(raw, max_bytes=MAX_STATE_BYTES, max_depth=MAX_STATE_DEPTH)
        now, state = parse_state(data)
    except OSError as exc:
        print(f"{args.state}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (bounded.BoundedParseError, StateError) as exc:
        print(f"{args.state}: {exc}", file=sys.stderr)
        return 2
    for key in unknown_keys(data):
        print(f"{args.state}: unknown key {key!r} ignored (see README, the decide state)", file=sys.stderr)
    try:
        decision = site.decider().decide(state, now)
        answer = decision.answer()
        # The spec's `reason`, made richer: the same one-line reason status, MQTT and the web page show.
        answer["reason"] = explain(record_body(decision, state), zone(site.site.timezone))
    except (ArithmeticError, ValueError, TypeError) as exc:  # the engine on a state it cannot use
        print(f"{args.state}: cannot decide on this state: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0


def _read_bounded(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(MAX_STATE_BYTES + 1)
