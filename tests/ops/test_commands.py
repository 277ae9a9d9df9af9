"""Command parsing: every malformed, unknown or out-of-range command is refused with a reason."""

from __future__ import annotations

import pytest

from controller.ops.mqtt_commands import ManualSetpoint, Reload, parse


@pytest.mark.parametrize(("payload", "event_id", "reason"), [
    (b"\xff\xfe", None, "payload is not JSON"),
    (b"[1, 2]", None, "payload must be a JSON object"),
    (b'{"eventId": "a"}', "a", "unknown command type None"),
    (b'{"eventId": "a", "type": "self_destruct"}', "a", "unknown command type 'self_destruct'"),
    (b'{"type": "setpoint", "kw": 1, "duration_s": 5}', None, "eventId: Field required"),
    (b'{"eventId": "b", "type": "setpoint", "kw": 1}', "b", "duration_s: Field required"),
    (b'{"eventId": "b", "type": "setpoint", "kw": 1, "duration_s": -5}', "b", "duration_s: Input should be greater"),
    (b'{"eventId": "b", "type": "setpoint", "kw": "ten", "duration_s": 5}', "b", "kw: Input should be a valid number"),
    (b'{"eventId": "b", "type": "dry_run", "enabled": true, "force": 1}', "b", "force: Extra inputs"),
    (b'{"eventId": 7, "type": "clear_override"}', "7", "eventId: Input should be a valid string"),
])
def test_bad_commands_are_refused_with_a_reason(payload: bytes, event_id: str | None, reason: str) -> None:
    parsed = parse(payload)
    assert parsed.command is None
    assert parsed.event_id == event_id
    assert parsed.error is not None and parsed.error.startswith(reason), parsed.error


def test_good_commands_parse() -> None:
    p = parse(b'{"eventId": "x", "type": "setpoint", "kw": -50.5, "duration_s": 900, "source": "alice"}')
    assert isinstance(p.command, ManualSetpoint)
    assert (p.event_id, p.command.kw, p.command.source) == ("x", -50.5, "alice")
    p = parse(b'{"id": "y", "type": "reload"}')  # "id" is accepted for "eventId"
    assert isinstance(p.command, Reload) and p.command.config is None and p.event_id == "y"
