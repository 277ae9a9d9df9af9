"""`flux-edge status --site FILE`: what the running daemon is doing, from its local admin endpoint."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from controller.ops.client import AdminUnavailable, admin_address, request

DEFAULT_SITE = "/etc/flux-edge/site.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", default=DEFAULT_SITE, metavar="FILE", help=f"the site file (default {DEFAULT_SITE})")
    p.add_argument("--json", action="store_true", help="print the raw status object")


def run(args: argparse.Namespace) -> int:
    host, port = admin_address(args.site)
    try:
        code, view = request("GET", host, port, "/status")
    except AdminUnavailable as exc:
        print(f"flux-edge is not running: {exc}", file=sys.stderr)
        return 1
    if code != 200:
        print(f"admin endpoint answered {code}: {view}", file=sys.stderr)
        return 1
    print(json.dumps(view, indent=2) if args.json else render(view))
    return 0


def _num(value: Any, unit: str) -> str:
    return "-" if value is None else f"{float(value):.1f} {unit}"


def _mark(v: dict[str, Any], name: str) -> str:
    """" (stale 95 s)" after a number older than its allowed age, "" otherwise."""
    f = (v.get("freshness") or {}).get(name)
    if not f or not f.get("stale"):
        return ""
    return " (stale: never read)" if f.get("age_s") is None else f" (stale {f['age_s']:.0f} s)"


def _clock(iso: str | None) -> str:
    return "-" if not iso else datetime.fromisoformat(iso).isoformat(timespec="minutes")


def _why_lines(v: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if v.get("reason"):
        out.append(f"why         {v['reason']}{_mark(v, 'target_kw')}")
    market = v.get("market") or {}
    parts = []
    price, volume = market.get("imbalance_price"), market.get("imbalance_volume")
    if price:
        parts.append(f"price {price['value']:.2f} p/kWh{_mark(v, 'imbalance_price')}")
    if volume:
        parts.append(f"NIV {volume['value']:+.0f} MWh{_mark(v, 'imbalance_volume')}")
    sp = (price or volume or {}).get("settlement_period")
    if sp:
        parts.append(f"SP {_clock(sp)}")
    if parts:
        out.append("market      " + "   ".join(parts))
    step, nxt = v.get("axle_step"), v.get("axle_next")
    if step or nxt:
        now = f"{step['action']} until {_clock(step['end'])}" if step else "no step now"
        later = f"   next {nxt['action']} at {_clock(nxt['start'])}" if nxt else ""
        out.append(f"axle        {now}{later}")
    change = v.get("next_mode_change")
    if change:
        out.append(f"next        {change['mode']} {change['change']} at {_clock(change['time'])}")
    return out


def _battery_line(v: dict[str, Any]) -> str | None:
    if v.get("battery_commanded_kw") is None and v.get("battery_measured_kw") is None:
        return None
    return (f"battery     commanded {_num(v.get('battery_commanded_kw'), 'kW')}   measured "
            f"{_num(v.get('battery_measured_kw'), 'kW')}{_mark(v, 'battery_measured_kw')}")


def _today_line(v: dict[str, Any]) -> str | None:
    t = v.get("today")
    if not t:
        return None
    since = "" if t.get("from_midnight") else f" (since {_clock(t.get('since'))})"
    return (f"today{since}   charged {t['charged_kwh']:.1f} kWh, discharged {t['discharged_kwh']:.1f} kWh, "
            f"imported {t['imported_kwh']:.1f} kWh, exported {t['exported_kwh']:.1f} kWh, "
            f"battery value {_gbp(t['battery_value_gbp'])}")


def _value_line(v: dict[str, Any]) -> str | None:
    """`value today £13.80 = earned £0.80 (2 ended periods, 20 not recorded) + planned £13.00 (26 periods
    left)`; without a plan, the earned part and why there is no number for the rest."""
    d = v.get("value_today")
    if not d:
        return None
    notes = [_n(d["earned_periods"], "ended period")]
    if d.get("unrecorded_periods"):
        notes.append(f"{d['unrecorded_periods']} not recorded")
    if d.get("setpoint_periods"):
        notes.append(f"{d['setpoint_periods']} at the setpoint")
    earned = f"earned {_gbp(d['earned_gbp'])} ({', '.join(notes)})"
    if d.get("expected_gbp") is None:
        return f"value today {earned}; the rest of the day: {d.get('no_plan') or 'no plan'}"
    beyond = f", {d['unplanned_periods']} beyond the plan" if d.get("unplanned_periods") else ""
    return (f"value today {_gbp(d['total_gbp'])} = {earned} + planned {_gbp(d['expected_gbp'])} "
            f"({_n(d['expected_periods'], 'period')} left{beyond})")


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def _band(b: dict[str, Any] | None, unit: str, digits: int) -> str:
    if not b:
        return "-"
    return f"{b['value']:.{digits}f} {unit} ({b['lower']:.{digits}f}..{b['upper']:.{digits}f})"


def _forecast_lines(v: dict[str, Any], now: datetime) -> list[str]:
    """`forecast    made 12:00 by net_load_kw profile, price_p_per_kwh persistence`, the next periods' net
    load and price with their 80 % intervals, then the notes."""
    f = v.get("forecast")
    if not f:
        return []
    tz = now.tzinfo
    made = datetime.fromisoformat(f["made_at"]).astimezone(tz).strftime("%H:%M")
    by = ", ".join(f"{q} {name}" for q, name in (f.get("forecasters") or {}).items()) or "-"
    out = [f"forecast    made {made} by {by}"]
    out += [f"  {datetime.fromisoformat(p['start']).astimezone(tz).strftime('%H:%M')}     net load "
            f"{_band(p.get('net_load_kw'), 'kW', 0)}   price {_band(p.get('price_p_per_kwh'), 'p/kWh', 1)}"
            for p in f.get("next") or []]
    out += [f"  note      {n}" for n in f.get("notes") or []]
    return out


def _age(d: dict[str, Any]) -> str:
    if d.get("reading_age_s") is None:
        return "-"
    return f"{d['reading_age_s']:.0f} s" + (" stale" if d.get("stale") else "")


def _gbp(value: float) -> str:
    return f"{'-' if value < 0 else ''}£{abs(value):.2f}"


def _ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    t = datetime.fromisoformat(iso)
    return f"{t.isoformat(timespec='seconds')} ({max(0.0, (now - t).total_seconds()):.0f} s ago)"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    return [line.rstrip(), *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)]


def render(v: dict[str, Any]) -> str:
    now = datetime.fromisoformat(v["time"])
    effective = ", ".join(v.get("effective_modes") or []) or "idle"
    ov = v.get("override")
    if ov and ov.get("setpoint_kw") is not None:
        effective = "manual setpoint"  # no mode acts under a manual setpoint: "idle" would mislead
    active = ", ".join(v.get("active_modes") or []) or "none"
    dry = {True: "on", False: "off", None: "-"}[v.get("dry_run")]
    mqtt = {True: "connected", False: "disconnected", None: "not configured"}[v.get("mqtt_connected")]
    out = [
        f"site        {v['site_id']}   config {v['config_sha256'][:12]}   at {now.isoformat(timespec='seconds')}",
        f"mode        {effective}   (active: {active})   dry run: {dry}",
        f"setpoint    {_num(v.get('target_kw'), 'kW')}{_mark(v, 'target_kw')}   SoE {_num(v.get('soe_kwh'), 'kWh')}"
        f"{_mark(v, 'soe_kwh')}   site power {_num(v.get('site_power_kw'), 'kW')}{_mark(v, 'site_power_kw')}",
        f"reloads     ok {v.get('reloads_ok', 0)}, failed {v.get('reloads_failed', 0)}   mqtt {mqtt}",
    ]
    out[3:3] = _why_lines(v)
    out += [line for line in (_battery_line(v), _today_line(v), _value_line(v)) if line]
    beats = v.get("heartbeat_age_s") or {}
    if beats:
        out.append("liveness    " + ", ".join(f"{name} {age:.1f} s ago" for name, age in beats.items()))
    dropped = [f"{what} {n}" for what, n in (("outbox rows", v.get("outbox_dropped")),
                                              ("mqtt messages", v.get("mqtt_dropped"))) if n]
    if dropped:
        out.append(f"dropped     {', '.join(dropped)}")
    if v.get("constraints"):
        out.append(f"limits      {', '.join(v['constraints'])}")
    plan = v.get("plan")
    if plan:
        value = "-" if plan.get("expected_value_gbp") is None else f"{plan['expected_value_gbp']:.2f} GBP expected"
        why = f"   ({plan['last_error']})" if plan.get("last_error") else ""
        out.append(f"plan        {plan['status']}   {plan.get('plan_id') or '-'}   {value}{why}")
        tz = now.tzinfo
        steps = [f"{datetime.fromisoformat(p['start']).astimezone(tz).strftime('%H:%M')} {p['battery_kw']:+.0f} kW"
                 f" -> {p['soe_end_kwh']:.0f} kWh" for p in plan.get("next", [])]
        if steps:
            out.append("plan next   " + ", ".join(steps[:8]))
    out += _forecast_lines(v, now)
    if ov:
        what = f"setpoint {ov['setpoint_kw']:g} kW" if ov.get("setpoint_kw") is not None else f"mode {ov.get('mode')}"
        out.append(f"override    {what} until {ov.get('until')} by {ov.get('source')}")
    alerts = v.get("alerts") or []
    if alerts:
        out.append("")
        out.append("LAST ALERTS")
        out += [f"{_clock(a['time'])}  {a['level']:<8} {a['kind']}: {a['message']}" for a in alerts]
    out.append("")
    rows = [[d["name"], d["kind"], d["state"], str(d["polls_ok"]), str(d["polls_failed"]),
             _age(d), d.get("last_error") or ""]
            for d in v.get("devices", [])]
    out += _table(["DEVICE", "KIND", "HEALTH", "POLLS OK", "FAILED", "AGE", "LAST ERROR"], rows)
    out.append("")
    sinks = v.get("sinks", [])
    if sinks:
        rows = [[s["name"], "-" if s.get("pending") is None else str(s["pending"]),
                 "-" if s.get("oldest_pending") is None else _ago(s["oldest_pending"], now),
                 _ago(s.get("last_upload"), now)] for s in sinks]
        out += _table(["SINK", "BACKLOG", "OLDEST PENDING", "LAST UPLOAD"], rows)
    else:
        out.append("no upload sinks configured")
    return "\n".join(out)
