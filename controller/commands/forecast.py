"""`flux-edge forecast`: the forecasts the daemon would use now, and their walk-forward evaluation.

    flux-edge forecast --site FILE [--at ISO] [--history CSV] [--horizon N] [--json]
    flux-edge forecast evaluate --site FILE --history CSV [--from DATE] [--to DATE] [--every N] [--json]

Answers on stdout (a table, or the spec's JSON with --json); a bad argument or history file is one
line on stderr (`FILE:LINE: message`) and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta

from controller.commands.common import load_site_or_report
from controller.config import SiteConfig
from controller.config.views import site_buffer_dir
from controller.core.forecast import QUANTITIES, Forecast
from controller.core.logs import configure_logging
from controller.engine.settlement import today_gb
from controller.forecast.evaluate import evaluate, format_table
from controller.forecast.forecasters import forecast_site
from controller.forecast.history import HistoryStore, history_path
from controller.forecast.rows import HistoryFileError, PeriodRow, read_history_csv
from controller.forecast.series import History


class UsageError(ValueError):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", metavar="FILE", help="the site file (required)")
    p.add_argument("--at", metavar="ISO", help="forecast as at this time (default: now)")
    p.add_argument("--history", metavar="CSV", help="history CSV (.csv or .csv.gz) instead of the site's local history")
    p.add_argument("--horizon", type=int, default=48, metavar="N", help="settlement periods ahead (default 48)")
    p.add_argument("--json", action="store_true", help="the spec's JSON instead of a table")
    sub = p.add_subparsers(dest="forecast_command", metavar="ACTION")
    ev = sub.add_parser("evaluate", help="walk-forward evaluation on a history CSV",
                        description="Forecasts every --every periods over [--from, --to], each from what was known "
                                    "before it; MAE, RMSE, skill against same-time-last-week persistence and 80 %% "
                                    "interval coverage per quantity and forecaster.")
    ev.add_argument("--site", required=True, metavar="FILE")
    ev.add_argument("--history", required=True, metavar="CSV")
    ev.add_argument("--from", dest="date_from", metavar="DATE", help="first local date (default: 8 weeks before --to)")
    ev.add_argument("--to", dest="date_to", metavar="DATE", help="last local date (default: the last full day)")
    ev.add_argument("--every", type=int, default=4, metavar="N", help="a forecast every N periods (default 4)")
    ev.add_argument("--horizon", type=int, default=48, metavar="N")
    ev.add_argument("--json", action="store_true")


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what}: '{text}' is not a date (YYYY-MM-DD)") from None


def _at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at: '{text}' is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise UsageError(f"--at: '{text}' has no UTC offset")
    return t.astimezone(UTC)


def _local_rows(config: SiteConfig) -> list[PeriodRow]:
    if not history_path(site_buffer_dir(config)).exists():
        return []
    store = HistoryStore.open(site_buffer_dir(config))
    try:
        return store.rows()
    finally:
        store.close()


def format_forecast(f: Forecast) -> str:
    present = [q for q in QUANTITIES if q in f.forecasters]
    lines = [f"forecast at {f.made_at.isoformat()}: " + ", ".join(f"{q} by {f.forecasters[q]}" for q in present)]
    lines += [f"note: {n}" for n in f.notes]
    lines.append(f"{'START':<26}" + "".join(f"{q + ' (80 %)':>30}" for q in present))
    for p in f.periods:
        cells = []
        for q in present:
            b = p.get(q)
            cells.append(f"{'-':>30}" if b is None else f"{f'{b.value:.1f} [{b.lower:.1f}, {b.upper:.1f}]':>30}")
        lines.append(f"{p.start.isoformat():<26}" + "".join(cells))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    configure_logging("console", "warning", stream=sys.stderr)  # stdout is the answer's
    if not args.site:
        print("forecast: --site FILE is required", file=sys.stderr)
        return 2
    config = load_site_or_report(args.site, defer_secrets=True)
    if config is None:
        return 2
    try:
        if args.horizon < 1 or args.horizon > 7 * 48:
            raise UsageError(f"--horizon: {args.horizon} is not between 1 and 336")
        if args.forecast_command == "evaluate":
            return _evaluate(args)
        at = _at(args.at)
        rows = read_history_csv(args.history) if args.history else _local_rows(config)
        f = forecast_site(History.from_rows(rows), at, args.horizon)
    except (UsageError, HistoryFileError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(f.as_json()) if args.json else format_forecast(f))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.every < 1:
        raise UsageError(f"--every: {args.every} must be at least 1")
    rows = read_history_csv(args.history)
    if not rows:
        raise UsageError(f"{args.history}: no rows to evaluate on")
    last_full = today_gb(rows[-1].period_start) - timedelta(days=1)
    to = _date(args.date_to, "--to") if args.date_to else last_full
    first = _date(args.date_from, "--from") if args.date_from else to - timedelta(days=55)
    if first > to:
        raise UsageError(f"--from {first} is after --to {to}")
    ev = evaluate(History.from_rows(rows), first, to, every=args.every, horizon=args.horizon)
    print(json.dumps(ev.as_json()) if args.json else format_table(ev))
    return 0
