"""`flux-edge import-legacy OLD.yaml`: print our site file for a reference controller's site file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from controller.legacy import LegacyError, convert, dump, site_id_from


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="OLD.yaml", help="site file of the reference Go controller")
    p.add_argument("--site-id", help="our site id (default: from the file name)")
    p.add_argument("--site-name", help="human-readable site name (default: the site id)")


def run(args: argparse.Namespace) -> int:
    try:
        data = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    site_id = args.site_id or site_id_from(args.file)
    try:
        site = convert(data, site_id, args.site_name)
    except (LegacyError, AttributeError, KeyError, TypeError, ValueError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(dump(site, Path(args.file).name))
    return 0
