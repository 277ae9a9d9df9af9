"""The site configuration: the model of the whole site file, its loader and precise errors.

The site model is application-level: it imports every part's config model. Parts build theirs from
the kernel's base types (`controller.core.config`) and never import this package.

`load_site` and `parse_site` validate in this process, or, in the daemon (which builds its config classes
as records, `controller.core.records`), in a child process that holds pydantic and exits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from controller.config.loaded import ConfigError, LoadedSite, Problem, UnsetSecret
from controller.config.site import ControllerConfig, SiteConfig, SiteInfo
from controller.core import records

__all__ = ["ConfigError", "ControllerConfig", "LoadedSite", "Problem", "SiteConfig", "SiteInfo", "UnsetSecret",
           "begin_load_site", "load_site", "parse_site"]


def load_site(path: str | Path, env: Mapping[str, str] | None = None, *, defer_secrets: bool = False) -> LoadedSite:
    """The site file, validated (see `controller.config.loader.load_site`). Raises ConfigError."""
    return begin_load_site(path, env, defer_secrets=defer_secrets)()


def begin_load_site(path: str | Path, env: Mapping[str, str] | None = None, *,
                    defer_secrets: bool = False) -> Callable[[], LoadedSite]:
    """`load_site`, begun now and finished by calling the result: in the daemon the validator's child
    process works while the caller imports what it needs (start-up time)."""
    if records.ACTIVE:
        from controller.config import isolated

        return isolated.begin_load_site(path, env, defer_secrets=defer_secrets)
    from controller.config import loader

    return lambda: loader.load_site(path, env, defer_secrets=defer_secrets)


def parse_site(text: str, filename: str = "<site>", env: Mapping[str, str] | None = None) -> SiteConfig:
    """A site file's text, validated. Raises ConfigError with every problem found."""
    if records.ACTIVE:
        from controller.config import isolated

        return isolated.parse_site(text, filename, env)
    from controller.config import loader

    return loader.parse_site(text, filename, env)
