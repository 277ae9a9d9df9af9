"""`flux-edge validate FILE...`: `ok FILE` per valid file on stdout, else one line per problem and exit 2.

A secret's `${NAME}` unset in this shell does not make the file invalid: the daemon reads it from its own
environment file (/etc/flux-edge/flux-edge.env, root's), which the operator's shell does not have, and the
demo's come from `flux-edge demo`. Each is named on stderr; `--require-secrets` (in the daemon's
environment, before a start) makes them problems like any other.
"""

from __future__ import annotations

import argparse
import sys

from controller.config import ConfigError, load_site


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--require-secrets", action="store_true",
                   help="an unset ${NAME} of a secret is a problem (default: named on stderr, the file still ok)")


def run(args: argparse.Namespace) -> int:
    code = 0
    for path in args.files:
        try:
            loaded = load_site(path, defer_secrets=True)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem)
            code = 2
            continue
        if args.require_secrets and loaded.unset_secrets:
            for unset in loaded.unset_secrets:
                print(unset.problem)
            code = 2
            continue
        print(f"ok {path}")
        for unset in loaded.unset_secrets:
            print(f"{unset.problem}: not needed to validate, the daemon needs it in its environment",
                  file=sys.stderr)
    return code
