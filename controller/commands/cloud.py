"""`flux-edge cloud migrate --dsn DSN`: create or upgrade the cloud schema."""

from __future__ import annotations

import argparse
import os
import sys

import psycopg

from controller.core.logs import configure_logging, register_secret
from uploader.migrate import migrate


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cloud_command", metavar="ACTION", required=True)
    m = sub.add_parser("migrate", help="apply the versioned migrations of schema flux (idempotent)")
    m.add_argument("--dsn", default=os.environ.get("FLUX_CLOUD_DSN"), metavar="DSN",
                   help="PostgreSQL connection string (default: $FLUX_CLOUD_DSN)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run(args: argparse.Namespace) -> int:
    configure_logging("console", stream=sys.stderr)
    if not args.dsn:
        print("no DSN: pass --dsn or set FLUX_CLOUD_DSN", file=sys.stderr)
        return 2
    try:
        password = psycopg.conninfo.conninfo_to_dict(args.dsn).get("password")
    except psycopg.Error as exc:
        print(f"bad DSN: {_first_line(exc)} (expected postgresql://user@host:port/db or 'host=... dbname=...')",
              file=sys.stderr)
        return 2
    if password:
        register_secret(str(password))
    try:
        applied = migrate(args.dsn)
    except psycopg.Error as exc:
        print(f"migration failed: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1
    print(f"applied {applied}" if applied else "schema flux is up to date")
    return 0
