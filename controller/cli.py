"""The `flux-edge` command line. Each command lives in `controller/commands/<name>.py` with
`add_arguments(parser)` and `run(args) -> int`; this table is the one place that lists them.

Only the command being run is imported (a command module pulls its own libraries: `simulate` the
simulator, `cloud` psycopg, `backtest` matplotlib); `flux-edge --help` needs none of them."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import sys
import typing
from collections.abc import Sequence

import structlog

from controller import __version__
from controller.core import records
from controller.core.logs import configure_logging

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
    "plan": ("controller.commands.plan", "the planner's 48 h battery schedule for a site, as a table or JSON"),
    "backtest": ("controller.commands.backtest", "run the site's modes over a recorded day against the simulated site"),
    "import-legacy": ("controller.commands.import_legacy", "convert a reference controller site file to ours"),
    "status": ("controller.commands.status", "what the running daemon is doing: mode, setpoint, SoE, devices, backlog"),
    "forecast": ("controller.commands.forecast", "48-period forecasts (net load, solar, price); `forecast evaluate`"),
    "history": ("controller.commands.history", "the local half-hour history: `history import` a CSV, `history stats`"),
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


def prepare(argv: Sequence[str]) -> None:
    """Before any import of the command: the daemon, which runs for years, builds its config classes as
    records and validates in a child process (controller.core.records): pydantic never enters it. Called
    in a process whose config classes are already built (a test), it leaves them as they are."""
    if _chosen(argv) == "run" and "controller.core.schema" not in sys.modules:
        records.activate()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prepare(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    # Log lines go to stderr: a command's answer is its stdout and nothing else. `run` and `simulate`
    # configure their own (stdout for journald, as documented), and a command may narrow the level.
    # Called in-process (tests, other tools), main leaves the logging set-up as it found it.
    saved, root = structlog.get_config(), logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging("console", "warning", stream=typing.cast("typing.TextIO", _Stderr()))
    try:
        return _run(args)
    finally:
        structlog.configure(**saved)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


class _Stderr(io.TextIOBase):
    """sys.stderr as it is when a line is written (not when logging was configured)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = importlib.import_module(args._module).run(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `flux-edge schema | head`: the reader left. Say so in one line; Python must not try again at exit.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):  # no descriptor (in-process)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"flux-edge {args.command}: output closed early (broken pipe)", file=sys.stderr)
        return 141
    except Exception as exc:  # house rule: one line, never a traceback
        text = str(exc).strip()
        print(f"flux-edge {args.command}: {type(exc).__name__}: {text.splitlines()[0] if text else ''}",
              file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
