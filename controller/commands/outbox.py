"""`flux-edge outbox stats --site FILE`: what the outbox holds, per sink."""

from __future__ import annotations

import argparse
import json

from controller.commands.common import load_site_or_report
from controller.config.views import uploader_site
from uploader.outbox import outbox_path
from uploader.site import buffer_dir, reopen_outbox


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="pending/uploaded rows, oldest pending reading, bytes on disk (JSON)")
    stats.add_argument("--site", required=True, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    config = load_site_or_report(args.site, defer_secrets=True)
    if config is None:
        return 2
    site = uploader_site(config)
    if not outbox_path(buffer_dir(site)).exists():
        names = [s.name for s in config.uploader.sinks]
        empty = {"pending": 0, "uploaded": 0, "oldest_pending": None, "bytes": 0}
        print(json.dumps(empty if len(names) <= 1 else {"sinks": {n: empty for n in names}, "bytes": 0}))
        return 0
    outbox = reopen_outbox(site)
    try:
        print(json.dumps(outbox.stats()))
    finally:
        outbox.close()
    return 0
