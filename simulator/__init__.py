"""The other side of every socket: simulated devices, market APIs and a cloud stand-in."""
