"""The durable outbox and the sinks that upload it to the cloud."""
