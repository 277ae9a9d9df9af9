from __future__ import annotations

import argparse
import json

from controller.config import SiteConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--indent", type=int, default=2)


def site_schema() -> dict[str, object]:
    return SiteConfig.model_json_schema(by_alias=True)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(site_schema(), indent=args.indent, sort_keys=False))
    return 0
