"""flux-edge: the on-site controller of a community-microgrid battery."""

__version__ = "0.1.0"
