"""Control modes: each maps (SiteState, now) to a Proposal; registered in `modes.catalog`."""
