"""Validate a site file in a child process and hand the daemon the result (issue 16).

The child (`python -m controller.config.isolated`) loads pydantic, validates exactly as every other
command does (`controller.config.loader`), and answers with one pickle: the validated site as records
(`controller.core.records.rebuild`), or the ConfigError with every problem, plus the secrets it
registered for redaction, which the daemon's log lines must redact too. Then it exits, and its memory
with it. The pickle crosses a pipe between two processes of the same code run by the same user, never
from a file or the network.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from controller.config.loaded import ConfigError, LoadedSite, Problem
from controller.core import logs, records

if TYPE_CHECKING:
    from controller.config.site import SiteConfig

# A validation takes about half a second; a child that is still busy after this is stuck (a full disk's
# swap, a broken interpreter): the load fails with a problem that says so, and a reload keeps the config.
CHILD_TIMEOUT_S = 120.0
_ROOT = str(Path(__file__).resolve().parent.parent.parent)


def load_site(path: str | Path, env: Mapping[str, str] | None = None, *, defer_secrets: bool = False) -> LoadedSite:
    answer: LoadedSite = _ask(("load", str(path), None if env is None else dict(env), defer_secrets), str(path))
    return answer


def parse_site(text: str, filename: str = "<site>", env: Mapping[str, str] | None = None) -> SiteConfig:
    answer: SiteConfig = _ask(("parse", text, filename, None if env is None else dict(env)), filename)
    return answer


def _ask(request: tuple[Any, ...], filename: str) -> Any:
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run([sys.executable, "-m", "controller.config.isolated"], input=pickle.dumps(request),
                              capture_output=True, env=child_env, timeout=CHILD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _failed(filename, f"the validator's process did not answer: {type(exc).__name__}") from None
    if done.returncode != 0 or not done.stdout:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise _failed(filename, f"the validator's process failed: {last[:300]}")
    kind, value, secrets = pickle.loads(done.stdout)
    logs.register_redactions(secrets)
    if kind == "error":
        raise value
    return value


def _failed(filename: str, message: str) -> ConfigError:
    return ConfigError([Problem(filename, 1, 1, "(file)", message)])


def _pickler(stream: BinaryIO) -> pickle.Pickler:
    """Models go as (module, class, fields) and secrets as their value: the daemon rebuilds both without
    pydantic (`controller.core.records`)."""
    from pydantic import BaseModel, SecretStr

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, BaseModel):
                return records.rebuild, (type(obj).__module__, type(obj).__qualname__, dict(obj.__dict__))
            if isinstance(obj, SecretStr):
                return records.secret, (obj.get_secret_value(),)
            return NotImplemented

    return Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL)


def main() -> int:
    from controller.config import loader

    request = pickle.loads(sys.stdin.buffer.read())
    try:
        if request[0] == "load":
            _, path, env, defer = request
            answer: tuple[str, Any] = ("ok", loader.load_site(path, env, defer_secrets=defer))
        else:
            _, text, filename, env = request
            answer = ("ok", loader.parse_site(text, filename, env))
    except ConfigError as exc:
        answer = ("error", exc)
    _pickler(sys.stdout.buffer).dump((*answer, sorted(logs.redactions())))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
