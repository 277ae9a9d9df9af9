"""The site configuration: the model of the whole site file, its loader and precise errors.

The site model is application-level: it imports every part's config model. Parts build theirs from
the kernel's base types (`controller.core.config`) and never import this package.
"""

from controller.config.loader import ConfigError, LoadedSite, Problem, UnsetSecret, load_site, parse_site
from controller.config.site import ControllerConfig, SiteConfig, SiteInfo

__all__ = ["ConfigError", "ControllerConfig", "LoadedSite", "Problem", "SiteConfig", "SiteInfo", "UnsetSecret",
           "load_site", "parse_site"]
