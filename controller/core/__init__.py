"""The kernel: what every layer shares (clock, bus, state store, logs, supervisor, config base types,
readings). It imports nothing else of the project, so anything may import it."""
