"""`flux-edge config apply --site FILE NEW.yaml`: hand a new site file to the running daemon (over SSH).

The daemon validates, writes it atomically keeping the last good copy, reloads, and rolls back by
itself if the site meter and battery stop answering. This command checks the file first, so a
broken file never leaves the operator's machine, and prints what the daemon did.
Exit codes: 0 applied (or unchanged), 1 rolled back or failed, 2 rejected.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from controller.config.loader import PlaceholderEnv
from controller.ops.client import AdminUnavailable, actor, admin_address, request
from controller.ops.config import RemoteConfigConfig
from controller.ops.remote_config import install_file, sha256, validate


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    apply = sub.add_parser("apply", help="validate NEW.yaml and make it the site's running config")
    apply.add_argument("--site", required=True, metavar="FILE", help="the site file the daemon runs")
    apply.add_argument("new", metavar="NEW.yaml")
    apply.add_argument("--actor", default=None, help="who is applying (default: the SSH user and address)")
    apply.add_argument("--timeout", type=float, default=None, metavar="S",
                       help="how long to wait for the daemon's verdict (default: its verify window + 30 s)")


def run(args: argparse.Namespace) -> int:
    new_path = Path(args.new)
    try:
        text = new_path.read_bytes()
    except OSError as exc:
        print(f"{new_path}: {exc.strerror}", file=sys.stderr)
        return 2
    # Secrets are resolved by the daemon: unset variables in this shell are not errors here.
    config, problems = validate(text, str(new_path), PlaceholderEnv(os.environ, "unset-in-this-shell"))
    if config is None:
        for problem in problems:
            print(problem)
        print("rejected: nothing was changed", file=sys.stderr)
        return 2
    who = args.actor or actor()
    host, port = admin_address(args.site)
    timeout = args.timeout or config.ops.remote_config.verify_timeout_s + 30.0
    try:
        headers = {"X-Flux-Actor": who, "X-Flux-Site": os.path.realpath(args.site),
                   "Content-Type": "application/yaml"}
        token = os.environ.get("FLUX_ADMIN_TOKEN")  # root's: `sudo --preserve-env` or sourced from the env file
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, answer = request("POST", host, port, "/config/apply", body=text, timeout_s=timeout, headers=headers)
    except AdminUnavailable as exc:
        return _apply_offline(Path(args.site), text, str(exc))
    for problem in answer.get("problems") or []:
        print(problem)
    result = answer.get("status", f"http {status}")
    digest = str(answer.get("sha256") or sha256(text))[:12]
    print(f"{result}: {digest} {answer.get('message', '')}".rstrip())
    if result in ("applied", "unchanged"):
        return 0
    return 2 if result in ("rejected", "wrong_site") else 1


def _apply_offline(site: Path, text: bytes, why: str) -> int:
    """No daemon to ask: install the file (keeping the current one as last good) for the next start."""
    try:
        current = site.read_bytes()
    except OSError:
        current = None
    try:
        install_file(site, text, current, RemoteConfigConfig().last_good_suffix)
    except OSError as exc:
        print(f"{site}: {exc.strerror}: {why}", file=sys.stderr)
        return 1
    print(f"written: {sha256(text)[:12]} to {site}; {why}: it takes effect when the daemon starts")
    return 0
