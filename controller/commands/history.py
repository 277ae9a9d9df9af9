"""`flux-edge history`: the site's local half-hour history (`{buffer.path}/history.sqlite3`).

    flux-edge history import --site FILE CSV    all or nothing: every bad line reported, none imported
    flux-edge history stats --site FILE         JSON {"periods", "oldest", "newest", "dropped", "bytes"}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller.commands.common import load_site_or_report
from controller.config.views import site_buffer_dir
from controller.core.logs import configure_logging
from controller.forecast.history import HistoryStore, history_path
from controller.forecast.rows import COLUMNS, HistoryFileError, PeriodRow, open_text, parse_lines

MAX_REPORTED = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    imp = sub.add_parser(
        "import", help="import a history CSV into the site's local history (all or nothing)",
        description="Import a history CSV (.csv or .csv.gz; columns: " + ", ".join(COLUMNS) + "; '#' lines are "
                    "comments, an empty cell is unknown). All or nothing: if any line is bad, every bad line is "
                    "printed on stderr as FILE:LINE: message (the first 20) and nothing is imported (exit 2). "
                    "Periods already in the history are replaced. Prints {\"imported\": N, ...stats} as JSON.")
    imp.add_argument("--site", required=True, metavar="FILE")
    imp.add_argument("csv", metavar="CSV")
    stats = sub.add_parser("stats", help="what the local history holds (JSON)")
    stats.add_argument("--site", required=True, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    configure_logging("console", "warning", stream=sys.stderr)  # stdout is the answer's
    config = load_site_or_report(args.site, defer_secrets=True)
    if config is None:
        return 2
    if args.history_command == "stats":
        if not history_path(site_buffer_dir(config)).exists():  # a question must not create the file
            print(json.dumps({"periods": 0, "oldest": None, "newest": None, "dropped": 0, "bytes": 0}))
            return 0
        store = HistoryStore.open(site_buffer_dir(config))
        try:
            print(json.dumps(store.stats()))
        finally:
            store.close()
        return 0
    rows: list[PeriodRow] = []
    errors: list[HistoryFileError] = []
    try:
        with open_text(Path(args.csv)) as f:
            for _, item in parse_lines(f, args.csv):
                if isinstance(item, HistoryFileError):
                    errors.append(item)
                else:
                    rows.append(item)
    except HistoryFileError as exc:
        errors.append(exc)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        errors.append(HistoryFileError(args.csv, 0, f"cannot read: {exc}"))
    if errors:
        for e in errors[:MAX_REPORTED]:
            print(str(e), file=sys.stderr)
        if len(errors) > MAX_REPORTED:
            print(f"{args.csv}: {len(errors) - MAX_REPORTED} more bad line(s); nothing imported", file=sys.stderr)
        return 2
    store = HistoryStore.open(site_buffer_dir(config))
    try:
        n = store.put(((r, None) for r in rows), source="import")
        print(json.dumps({"imported": n, **store.stats()}))
    finally:
        store.close()
    return 0
