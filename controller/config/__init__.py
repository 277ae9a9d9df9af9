"""The site configuration: model, loader and precise errors.

The names below load lazily: device, mode and other config modules import the building blocks in
`controller.config.types`, and importing this package must not pull the whole site model (which
imports them back) before they have finished loading.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.config.loader import ConfigError as ConfigError
    from controller.config.loader import LoadedSite as LoadedSite
    from controller.config.loader import Problem as Problem
    from controller.config.loader import load_site as load_site
    from controller.config.loader import parse_site as parse_site
    from controller.config.site import ControllerConfig as ControllerConfig
    from controller.config.site import SiteConfig as SiteConfig
    from controller.config.site import SiteInfo as SiteInfo

_WHERE = {
    "ConfigError": "loader", "LoadedSite": "loader", "Problem": "loader", "load_site": "loader",
    "parse_site": "loader", "ControllerConfig": "site", "SiteConfig": "site", "SiteInfo": "site",
}

__all__ = ["ConfigError", "ControllerConfig", "LoadedSite", "Problem", "SiteConfig", "SiteInfo", "load_site",
           "parse_site"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"controller.config.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'controller.config' has no attribute {name!r}")
