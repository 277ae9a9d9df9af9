"""The environment of the daemon's own Python children (validator, planner, backlog upload)."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])


def child_env() -> dict[str, str]:
    """This process's environment with the project first on PYTHONPATH, so `python -m <our module>` finds
    the same code however the daemon was started."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
