"""Command payload parsing without pydantic: every command type accepted as before, every rejection with
its exact reason, and the module itself importing no pydantic (the daemon must not load it)."""

from __future__ import annotations

import ast
import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from controller.ops import mqtt_commands
from controller.ops.mqtt_commands import (
    COMMAND_TYPES,
    Backfill,
    ClearOverride,
    DryRun,
    ManualSetpoint,
    ModeOverride,
    Reload,
    parse,
)

TIME = "Input should be an ISO 8601 time such as 2026-12-01T10:00:00Z"


def cmd(**body: Any) -> bytes:
    return json.dumps({"eventId": "e", **body}).encode()


ACCEPTED: list[tuple[bytes, type, dict[str, Any]]] = [
    (cmd(type="dry_run", enabled=True), DryRun, {"enabled": True}),
    (cmd(type="dry_run", enabled=False, source="ops"), DryRun, {"enabled": False, "source": "ops"}),
    (cmd(type="dry_run", enabled=None), DryRun, {"enabled": None, "source": None}),
    (cmd(type="setpoint", kw=-50.5, duration_s=900), ManualSetpoint, {"kw": -50.5, "duration_s": 900.0}),
    (cmd(type="setpoint", kw=0, duration_s=0.001), ManualSetpoint, {"kw": 0.0, "duration_s": 0.001}),
    (cmd(type="setpoint", kw=1e6, duration_s=1), ManualSetpoint, {"kw": 1e6}),
    (cmd(type="setpoint", kw=-1_000_000, duration_s=1), ManualSetpoint, {"kw": -1e6}),
    # The site's override limit is the handler's to apply, not the parser's.
    (cmd(type="setpoint", kw=1, duration_s=1e300), ManualSetpoint, {"duration_s": 1e300}),
    (cmd(type="mode", mode="axle", duration_s=60), ModeOverride, {"mode": "axle", "duration_s": 60.0}),
    (cmd(type="mode", mode="m" * 200, duration_s=60), ModeOverride, {"mode": "m" * 200}),
    (cmd(type="clear_override"), ClearOverride, {"event_id": "e", "source": None}),
    (cmd(type="clear_override", source=""), ClearOverride, {"source": ""}),
    (cmd(type="clear_override", source="s" * 200), ClearOverride, {"source": "s" * 200}),
    (b'{"id": "y", "type": "reload"}', Reload, {"event_id": "y", "config": None}),
    (cmd(type="reload", config=None), Reload, {"config": None}),
    (cmd(type="reload", config="site: {}\n"), Reload, {"config": "site: {}\n"}),
    (cmd(type="reload", config="x" * 256 * 1024), Reload, {"config": "x" * 256 * 1024}),
    (cmd(type="backfill"), Backfill, {"since": None, "until": None}),
    (cmd(type="backfill", since=None, until=None), Backfill, {"since": None, "until": None}),
    (cmd(type="backfill", since="2026-12-01T10:00:00Z"), Backfill, {"since": datetime(2026, 12, 1, 10, tzinfo=UTC)}),
    (cmd(type="backfill", since="2026-12-01T10:00:00+02:00"), Backfill,
     {"since": datetime(2026, 12, 1, 10, tzinfo=timezone(timedelta(hours=2)))}),
    (cmd(type="backfill", since="2026-12-01T10:00:00-0530"), Backfill,
     {"since": datetime(2026, 12, 1, 10, tzinfo=timezone(-timedelta(hours=5, minutes=30)))}),
    # Without an offset a time is UTC, as for `flux-edge backfill --since`.
    (cmd(type="backfill", since="2026-12-01T10:00:00"), Backfill, {"since": datetime(2026, 12, 1, 10, tzinfo=UTC)}),
    (cmd(type="backfill", since="2026-12-01"), Backfill, {"since": datetime(2026, 12, 1, tzinfo=UTC)}),
    (cmd(type="backfill", since="2026-12-01 10:30"), Backfill, {"since": datetime(2026, 12, 1, 10, 30, tzinfo=UTC)}),
    (cmd(type="backfill", since="20261201T100000"), Backfill, {"since": datetime(2026, 12, 1, 10, tzinfo=UTC)}),
    (cmd(type="backfill", since="2026-12-01T10"), Backfill, {"since": datetime(2026, 12, 1, 10, tzinfo=UTC)}),
    (cmd(type="backfill", since="2026-12-01T10:00:00+02"), Backfill,
     {"since": datetime(2026, 12, 1, 10, tzinfo=timezone(timedelta(hours=2)))}),
    (cmd(type="backfill", since="2026-12-01T10:00:00.1234567Z", until="2026-12-02T00:00:00,5+00:00"), Backfill,
     {"since": datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC),
      "until": datetime(2026, 12, 2, 0, 0, 0, 500000, tzinfo=UTC)}),
    # The signature and its timestamp are the bridge's (controller/ops/auth.py): not extra keys.
    (cmd(type="clear_override", auth={"key": "k", "sig": "00"}, timestamp="2026-12-01T10:00:00Z"), ClearOverride, {}),
]


@pytest.mark.parametrize(("payload", "cls", "fields"), ACCEPTED)
def test_good_commands_parse_to_their_dataclass(payload: bytes, cls: type, fields: dict[str, Any]) -> None:
    parsed = parse(payload)
    assert parsed.error is None, parsed.error
    assert type(parsed.command) is cls
    assert parsed.raw == json.loads(payload)
    assert parsed.event_id == parsed.command.event_id
    for name, value in fields.items():
        got = getattr(parsed.command, name)
        assert got == value and type(got) is type(value), (name, got)
        if isinstance(value, datetime):
            assert got.utcoffset() == value.utcoffset()


REJECTED: list[tuple[bytes, str | None, str]] = [
    # eventId
    (b'{"type": "setpoint", "kw": 1, "duration_s": 5}', None, "eventId: Field required"),
    (b'{"event_id": "u", "type": "reload"}', None, "eventId: Field required"),
    (b'{"eventId": "", "type": "reload"}', "", "eventId: String should have at least 1 character"),
    (b'{"id": "", "type": "reload"}', "", "id: String should have at least 1 character"),
    (cmd(type="reload", eventId="x" * 201), "x" * 200, "eventId: String should have at most 200 characters"),
    (b'{"eventId": 7, "type": "clear_override"}', "7", "eventId: Input should be a valid string"),
    (b'{"id": 7, "type": "clear_override"}', "7", "id: Input should be a valid string"),
    (b'{"eventId": true, "type": "clear_override"}', None, "eventId: Input should be a valid string"),
    (b'{"eventId": null, "id": "i", "type": "clear_override"}', None, "eventId: Input should be a valid string"),
    (b'{"eventId": "e", "id": "i", "type": "clear_override"}', "e", "id: Extra inputs are not permitted"),
    # source
    (cmd(type="clear_override", source=5), "e", "source: Input should be a valid string"),
    (cmd(type="clear_override", source="s" * 201), "e", "source: String should have at most 200 characters"),
    # dry_run
    (cmd(type="dry_run"), "e", "enabled: Field required"),
    (cmd(type="dry_run", enabled=1), "e", "enabled: Input should be a valid boolean"),
    (cmd(type="dry_run", enabled="false"), "e", "enabled: Input should be a valid boolean"),
    (cmd(type="dry_run", enabled=True, force=1), "e", "force: Extra inputs are not permitted"),
    # setpoint
    (cmd(type="setpoint", kw=True, duration_s=60), "e", "kw: Input should be a valid number"),
    (cmd(type="setpoint", kw="250", duration_s=60), "e", "kw: Input should be a valid number"),
    (cmd(type="setpoint", kw=None, duration_s=60), "e", "kw: Input should be a valid number"),
    (cmd(type="setpoint", kw=[250], duration_s=60), "e", "kw: Input should be a valid number"),
    (cmd(type="setpoint", kw=1e7, duration_s=60), "e", "kw: Input should be less than or equal to 1000000"),
    (cmd(type="setpoint", kw=-1e6 - 0.5, duration_s=60), "e", "kw: Input should be greater than or equal to -1000000"),
    (cmd(type="setpoint", kw=10**17, duration_s=60), "e", "kw: Input should be less than or equal to 1000000"),
    # inf and NaN are not JSON: the bounded parser refuses them before any field is looked at.
    (b'{"eventId": "e", "type": "setpoint", "kw": 1e400, "duration_s": 60}', None,
     "payload refused: number 1e400 is out of range"),
    (b'{"eventId": "e", "type": "setpoint", "kw": NaN, "duration_s": 60}', None,
     "payload refused: NaN is not a number JSON allows"),
    (cmd(type="setpoint", duration_s=60), "e", "kw: Field required"),
    (cmd(type="setpoint", kw=250), "e", "duration_s: Field required"),
    (cmd(type="setpoint", kw=250, duration_s=0), "e", "duration_s: Input should be greater than 0"),
    (cmd(type="setpoint", kw=250, duration_s=-1), "e", "duration_s: Input should be greater than 0"),
    (cmd(type="setpoint", kw=250, duration_s=True), "e", "duration_s: Input should be a valid number"),
    (cmd(type="setpoint", kw=250, duration_s="60"), "e", "duration_s: Input should be a valid number"),
    # The first problem in field order is the one reported; extra keys come last.
    (cmd(type="setpoint", kw="a", duration_s="b", zz=1), "e", "kw: Input should be a valid number"),
    (cmd(type="setpoint", kw=1, duration_s=5, zz=1, aa=2), "e", "zz: Extra inputs are not permitted"),
    (b'{"zz": 1, "type": "setpoint", "kw": "a"}', None, "eventId: Field required"),
    (cmd(type="setpoint", kw="a", source=5), "e", "source: Input should be a valid string"),
    # mode
    (cmd(type="mode", mode="", duration_s=60), "e", "mode: String should have at least 1 character"),
    (cmd(type="mode", mode="x" * 201, duration_s=60), "e", "mode: String should have at most 200 characters"),
    (cmd(type="mode", mode=["axle"], duration_s=60), "e", "mode: Input should be a valid string"),
    (cmd(type="mode", duration_s=60), "e", "mode: Field required"),
    (cmd(type="mode", mode="axle"), "e", "duration_s: Field required"),
    (cmd(type="mode", mode="axle", duration_s=-5), "e", "duration_s: Input should be greater than 0"),
    # clear_override
    (cmd(type="clear_override", extra=1), "e", "extra: Extra inputs are not permitted"),
    # reload
    (cmd(type="reload", config=5), "e", "config: Input should be a valid string"),
    (cmd(type="reload", config={"site": {}}), "e", "config: Input should be a valid string"),
    (cmd(type="reload", config="x" * (256 * 1024 + 1)), "e", "config: String should have at most 262144 characters"),
    # backfill
    (cmd(type="backfill", since=5), "e", f"since: {TIME}"),
    (cmd(type="backfill", since=True), "e", f"since: {TIME}"),
    (cmd(type="backfill", since=[]), "e", f"since: {TIME}"),
    (cmd(type="backfill", since="yesterday"), "e", f"since: {TIME}"),
    (cmd(type="backfill", since=""), "e", f"since: {TIME}"),
    (cmd(type="backfill", since="1700000000"), "e", f"since: {TIME}"),  # Unix seconds are no ISO 8601 time
    (cmd(type="backfill", since="2026-12-01T10:00:00."), "e", f"since: {TIME}"),
    (cmd(type="backfill", since=" 2026-12-01T10:00:00"), "e", f"since: {TIME}"),
    (cmd(type="backfill", since="2026-12-01T10:00:00\n"), "e", f"since: {TIME}"),
    (cmd(type="backfill", since="２０２６-12-01"), "e", f"since: {TIME}"),
    (cmd(type="backfill", since="2026-02-30T10:00:00"), "e", f"since: {TIME} (day is out of range for month)"),
    (cmd(type="backfill", since="2026-13-01"), "e", f"since: {TIME} (month must be in 1..12)"),
    (cmd(type="backfill", since="2026-12-01T24:00"), "e", f"since: {TIME} (hour must be in 0..23)"),
    (cmd(type="backfill", since="2026-12-01T10:00:60"), "e", f"since: {TIME} (second must be in 0..59)"),
    (cmd(type="backfill", since="0000-01-01"), "e", f"since: {TIME} (year 0 is out of range)"),
    (cmd(type="backfill", since="2026-12-01T10:00+24:00"), "e", f"since: {TIME} (UTC offset out of range)"),
    (cmd(type="backfill", since="2026-12-01t10:00z"), "e", f"since: {TIME}"),
    (cmd(type="backfill", since="2026-12-01T10:00:00Z", until="x"), "e", f"until: {TIME}"),
    (cmd(type="backfill", until=5, since="x"), "e", f"since: {TIME}"),
    # type
    (b'{"eventId": "a"}', "a", "unknown command type None; expected one of "
     "dry_run, setpoint, mode, clear_override, reload, backfill"),
    (cmd(type="self_destruct"), "e", "unknown command type 'self_destruct'; expected one of "
     "dry_run, setpoint, mode, clear_override, reload, backfill"),
    (cmd(type=["setpoint"]), "e", "unknown command type ['setpoint']; expected one of "
     "dry_run, setpoint, mode, clear_override, reload, backfill"),
    # the payload itself
    (b"\xff\xfe", None, "payload is not JSON: not UTF-8: invalid start byte at byte 0"),
    (b"[1, 2]", None, "payload must be a JSON object"),
    (b"{" * 20, None, "payload refused: nested more than 8 levels deep"),
]


@pytest.mark.parametrize(("payload", "event_id", "error"), REJECTED)
def test_bad_commands_are_refused_with_the_exact_reason(payload: bytes, event_id: str | None, error: str) -> None:
    parsed = parse(payload)
    assert parsed.command is None
    assert parsed.event_id == event_id
    assert parsed.error == error


def test_the_field_table_covers_every_command_field() -> None:
    assert COMMAND_TYPES == ("dry_run", "setpoint", "mode", "clear_override", "reload", "backfill")
    common = mqtt_commands._COMMON
    for cls, own in mqtt_commands._FIELDS.items():
        assert {f.name for f in dataclasses.fields(cls)} == {spec.name for spec in (*common, *own)}, cls


def test_commands_are_frozen() -> None:
    command = parse(cmd(type="setpoint", kw=1, duration_s=5)).command
    assert isinstance(command, ManualSetpoint) and command.type == "setpoint"
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.kw = 2  # type: ignore[misc]


ODD_VALUES: list[Any] = [None, True, False, 0, -1, 1.5, 1e300, 10**17, "", "x", "250", "x" * 300, [], {}, [1],
                         {"a": [1]}, "2026-12-01T10:00:00Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]


def test_parse_never_raises() -> None:
    keys = ["eventId", "id", "type", "source", "enabled", "kw", "duration_s", "mode", "config", "since", "until",
            "auth", "timestamp", "other"]
    for kind in (*COMMAND_TYPES, None, 5):
        for key in keys:
            for value in ODD_VALUES:
                body: dict[str, Any] = {"eventId": "e", "type": kind, "kw": 1, "duration_s": 1, "mode": "m"}
                body[key] = value
                parsed = parse(json.dumps(body).encode())
                assert (parsed.command is None) != (parsed.error is None), (body, parsed)
                assert parsed.error is None or ("\n" not in parsed.error and len(parsed.error) < 600)


def test_the_module_imports_no_pydantic() -> None:
    # By its own source, not sys.modules: modules it imports may still load pydantic for now.
    tree = ast.parse(Path(mqtt_commands.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [name for name in imported if name.split(".")[0] == "pydantic"], imported
