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
def test_library_logs_are_one_json_line_each_without_tracebacks() -> None:
    import io
    import json as _json
    import logging

    import structlog as _structlog

    from controller.core.logs import configure_logging, forget_secrets, register_secret

    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    register_secret("S3NTINEL-lib-9c1")
    try:
        try:
            raise ConnectionError("link down\nsecond line S3NTINEL-lib-9c1")
        except ConnectionError:
            logging.getLogger("pymodbus.client").critical("request failed:\n%s", "details", exc_info=True)
        logging.getLogger("somelib").warning("two\nlines with S3NTINEL-lib-9c1")
    finally:
        _structlog.reset_defaults()
        logging.getLogger().handlers = []
        forget_secrets()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    first, second = (_json.loads(line) for line in lines)
    assert first["event"] == "library_log" and first["logger"] == "pymodbus.client" and first["level"] == "critical"
    assert first["error"].startswith("ConnectionError: link down second line")
    assert "Traceback" not in stream.getvalue() and "S3NTINEL-lib-9c1" not in stream.getvalue()
    assert second["message"] == "two lines with ***"


def test_redaction_inside_nested_escaped_and_error_strings_but_not_of_short_values() -> None:
    import io
    import json as _json

    import structlog as _structlog

    from controller.core.logs import configure_logging, forget_secrets, get_logger, redact, register_secret

    secret = 'pa"ss\\wörd/with+odd chars'
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        register_secret(secret)
        register_secret("flux")  # too short to redact without wrecking ordinary words: not redacted
        log = get_logger("t")
        log.error("sink_failed", detail={"nested": [f"dsn=postgresql://u:{secret}@h/db"]},
                  error=repr(ValueError(f"auth failed for {secret}")),
                  url="postgresql://u:" + __import__("urllib.parse").parse.quote(secret, safe="") + "@h/db",
                  quoted=_json.dumps({"password": secret}), word="flux-edge")
        data = redact({"a": (secret, 5, None), "b": [{"c": f"x{secret}y"}]})
    finally:
        _structlog.reset_defaults()
        forget_secrets()
    text = stream.getvalue()
    assert "wörd" not in text and "w\\u00f6rd" not in text and "w%C3%B6rd" not in text, text
    line = _json.loads(text.splitlines()[-1])
    assert line["detail"] == {"nested": ["dsn=postgresql://u:***@h/db"]}
    assert "***" in line["error"] and "***" in line["url"] and "***" in line["quoted"]
    assert line["word"] == "flux-edge"
    assert data == {"a": ("***", 5, None), "b": [{"c": "x***y"}]}
