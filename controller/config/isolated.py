"""Validate a site file in a child process and hand the daemon the result (issue 16).

The child (`python -m controller.config.isolated`) loads pydantic, validates exactly as every other
command does (`controller.config.loader`), and answers with one pickle: the validated site as records
(`controller.core.records.rebuild`), or the ConfigError with every problem, plus the secrets it
registered for redaction, which the daemon's log lines must redact too. Then it exits, and its memory
with it. The pickle crosses a pipe between two processes of the same code run by the same user, never
from a file or the network.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from controller.config.loaded import ConfigError, LoadedSite, Problem
from controller.core import logs, records
from controller.core.process import child_env

if TYPE_CHECKING:
    from controller.config.site import SiteConfig

# A validation takes about half a second; a child that is still busy after this is stuck (a full disk's
# swap, a broken interpreter): the load fails with a problem that says so, and a reload keeps the config.
CHILD_TIMEOUT_S = 120.0


def begin_load_site(path: str | Path, env: Mapping[str, str] | None = None, *,
                    defer_secrets: bool = False) -> Callable[[], LoadedSite]:
    """Start the child now, while the caller imports the daemon; calling the result takes its answer."""
    proc = _start(str(path))
    request = ("load", str(path), None if env is None else dict(env), defer_secrets)
    return lambda: typing.cast(LoadedSite, _finish(proc, request, str(path)))


def parse_site(text: str, filename: str = "<site>", env: Mapping[str, str] | None = None) -> SiteConfig:
    request = ("parse", text, filename, None if env is None else dict(env))
    return typing.cast("SiteConfig", _finish(_start(filename), request, filename))


def _start(filename: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen([sys.executable, "-m", "controller.config.isolated"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    except OSError as exc:
        raise _failed(filename, f"the validator's process did not start: {exc.strerror or exc}") from None


def _finish(proc: subprocess.Popen[bytes], request: tuple[Any, ...], filename: str) -> Any:
    # The child imports pydantic and the config classes before it reads its request: that overlaps with
    # whatever the caller did since _start. (A child that died early is seen by its exit status: the
    # write to its closed pipe is ignored by communicate.)
    try:
        out, err = proc.communicate(pickle.dumps(request), timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise _failed(filename, f"the validator's process did not answer in {CHILD_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0 or not out:
        last = (err.decode("utf-8", "replace").strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise _failed(filename, f"the validator's process failed: {last[:300]}")
    kind, value, secrets = pickle.loads(out)  # our own child, over a pipe
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
