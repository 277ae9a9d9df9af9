"""Field operations: MQTT, metrics, systemd watchdog, remote config, status."""
