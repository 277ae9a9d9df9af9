"""Device drivers: each kind in its own folder (declared by its `kind.py`), listed in `devices.catalog`."""
