"""Device drivers: each kind in its own folder, registered in `devices.catalog`."""
