"""The site configuration: model, loader and precise errors."""

from controller.config.loader import ConfigError, LoadedSite, Problem, load_site, parse_site
from controller.config.site import ControllerConfig, SiteConfig, SiteInfo

__all__ = ["ConfigError", "ControllerConfig", "LoadedSite", "Problem", "SiteConfig", "SiteInfo", "load_site",
           "parse_site"]
