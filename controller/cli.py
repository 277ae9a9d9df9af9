"""The `flux-edge` command line. Each command lives in `controller/commands/<name>.py` with
`add_arguments(parser)` and `run(args) -> int`; this table is the one place that lists them.

Only the command being run is imported (a command module pulls its own libraries: `simulate` the
simulator, `cloud` psycopg, `backtest` matplotlib); `flux-edge --help` needs none of them."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from controller import __version__

# name -> (module, one-line help). Only commands that work are listed.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("controller.commands.run", "run the daemon for one site"),
    "demo": ("controller.commands.demo", "simulator + daemon on one site with a live status view (`make run`)"),
    "validate": ("controller.commands.validate", "check site files; print ok or FILE:LINE:COL problems"),
    "schema": ("controller.commands.schema", "print the JSON Schema of the site file"),
    "simulate": ("controller.commands.simulate", "serve the simulated devices, market APIs and cloud of a site"),
    "outbox": ("controller.commands.outbox", "outbox statistics (pending, uploaded, oldest pending, bytes)"),
    "cloud": ("controller.commands.cloud", "cloud schema: `cloud migrate --dsn DSN` creates or upgrades it"),
    "backfill": ("controller.commands.backfill", "gap recovery now: resend what the cloud lacks, read back meters"),
    "read": ("controller.commands.read", "poll one device once and print its reading as JSON"),
    "decide": ("controller.commands.decide", "run arbitration and the safety envelope once on a state file"),
    "backtest": ("controller.commands.backtest", "run the site's modes over a recorded day against the simulated site"),
    "import-legacy": ("controller.commands.import_legacy", "convert a reference controller site file to ours"),
    "status": ("controller.commands.status", "what the running daemon is doing: mode, setpoint, SoE, devices, backlog"),
    "config": ("controller.commands.config_cmd", "apply a new site file: validate, write, reload, verify or roll back"),
}


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the command it names gets its arguments (its module imported),
    the others are listed by name and help. Without `argv` every command is complete."""
    parser = argparse.ArgumentParser(
        prog="flux-edge", description="On-site controller of a community-microgrid battery.")
    parser.add_argument("--version", action="version", version=f"flux-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen(argv) if argv is not None else None
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if argv is None or name == chosen:
            importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        code: int = importlib.import_module(args._module).run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
