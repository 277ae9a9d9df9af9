"""`flux-edge backtest`: the site's modes over a recorded day, against the simulated site, in simulated time."""
