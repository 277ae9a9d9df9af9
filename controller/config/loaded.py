"""What loading a site file gives: the validated site, or every problem found. Free of pydantic: the
daemon receives these from the validator's child process (controller.config.isolated)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.config.site import SiteConfig


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.path}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    def __reduce__(self) -> tuple[Any, ...]:  # sent whole from the validator's process
        return ConfigError, (self.problems,)


@dataclass(frozen=True)
class UnsetSecret:
    """A secret field whose `${NAME}` is not set in this environment (loaded with `defer_secrets`)."""

    name: str
    problem: Problem  # where it is, as a validation problem would say it


@dataclass(frozen=True)
class LoadedSite:
    config: SiteConfig
    path: str
    sha256: str  # of the file's bytes: the config version operators see
    # Filled only with `defer_secrets`: each of these fields holds DEFERRED_SECRET, not the secret.
    unset_secrets: tuple[UnsetSecret, ...] = ()
