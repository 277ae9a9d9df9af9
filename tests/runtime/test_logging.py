"""Logs are structured events: one JSON object per line, named event, fields as keys; secrets redacted."""

from __future__ import annotations

import io
import json

from controller.config import parse_site
from controller.core.logs import configure_logging, get_logger

SITE = """\
site: {id: t1, name: Test}
devices:
  - {type: acuvim2, name: m1, id: 00000000-0000-4000-8000-000000000001, host: 127.0.0.1}
mqtt: {host: 127.0.0.1, username: u, password: "${MQTT_PASSWORD}"}
"""


def test_json_lines_with_named_events() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    get_logger("test").info("poll_failed", device="site-meter", error="timeout", attempt=3)
    record = json.loads(out.getvalue().strip())
    assert record["event"] == "poll_failed"
    assert record["device"] == "site-meter" and record["attempt"] == 3 and record["level"] == "info"
    assert record["ts"].endswith("Z")


def test_resolved_secrets_never_reach_a_log_line() -> None:
    sentinel = "S3NTINEL-mqtt-password-xyz"
    parse_site(SITE, "site.yaml", {"MQTT_PASSWORD": sentinel})
    out = io.StringIO()
    configure_logging("json", stream=out)
    log = get_logger("test")
    log.info("mqtt_connect_failed", error=f"auth failed for password {sentinel}")
    log.info("dsn", dsn=f"postgresql://u:{sentinel}@db/x", extra={"nested": sentinel})
    text = out.getvalue()
    assert sentinel not in text
    assert "***" in text


def test_console_format_for_people() -> None:
    out = io.StringIO()
    configure_logging("console", stream=out)
    get_logger("test").warning("slot_missed", device="bess")
    assert "slot_missed" in out.getvalue() and "device" in out.getvalue()
    assert not out.getvalue().lstrip().startswith("{")


def test_a_login_name_equal_to_the_site_id_does_not_mask_the_site_id() -> None:
    from controller.core.logs import forget_secrets

    forget_secrets()
    site = SITE.replace("id: t1", "id: demo") + (
        'market: {axle: {base_url: "http://127.0.0.1:1", asset_id: a1, username: demo, '
        'password: "${AXLE_PASSWORD}"}}\n')
    config = parse_site(site, "site.yaml", {"MQTT_PASSWORD": "mqtt-secret-1", "AXLE_PASSWORD": "axle-secret-1"})
    assert config.market.axle is not None and config.market.axle.username.get_secret_value() == "demo"
    out = io.StringIO()
    configure_logging("json", stream=out)
    get_logger("test").info("axle_login", site="demo", detail="demo logged in with axle-secret-1")
    record = json.loads(out.getvalue().strip())
    assert record["site"] == "demo"  # the login name is not a secret
    assert record["detail"] == "demo logged in with ***"  # the password still is
    forget_secrets()
