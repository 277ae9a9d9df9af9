"""What several commands share."""

from __future__ import annotations

import sys

from controller.config import ConfigError, SiteConfig, load_site


def load_site_or_report(path: str, *, defer_secrets: bool = False) -> SiteConfig | None:
    """The site file's config; or None after printing each of its problems on stderr, one per line
    (`FILE:LINE:COL: path: message`), for the caller to exit 2. stdout stays the command's own.

    `defer_secrets` for a command that never uses a secret: an operator's shell has no `${...}` the
    daemon's environment file sets, and an offline answer must not depend on one."""
    try:
        return load_site(path, defer_secrets=defer_secrets).config
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
