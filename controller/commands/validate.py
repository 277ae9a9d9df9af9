from __future__ import annotations

import argparse

from controller.config import ConfigError, load_site


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE")


def run(args: argparse.Namespace) -> int:
    code = 0
    for path in args.files:
        try:
            load_site(path)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem)
            code = 2
        else:
            print(f"ok {path}")
    return code
