"""Every broken site file gets one precise line: FILE:LINE:COL: dotted.path: message.

Each row takes the valid BASE below, replaces one snippet, and asserts the exact line, column and
field path of the problem reported (and a fragment of its message).
"""

from __future__ import annotations

import pytest

from controller.config import ConfigError, parse_site

ENV = {"AXLE_USER": "axle-user", "AXLE_PASS": "axle-pass", "KEY": "anon-key"}

BASE = """\
site:
  id: t1
  name: Test
devices:
  - type: powerpack
    name: bess
    id: 00000000-0000-4000-8000-000000000001
    host: 127.0.0.1
    port: 15020
    nameplate_power_kw: 250
    nameplate_energy_kwh: 1000
  - type: acuvim2
    name: site-meter
    id: 00000000-0000-4000-8000-000000000002
    host: 127.0.0.1
    port: 15021
controller:
  site_meter: site-meter
  battery: bess
  soe_min_kwh: 50
  soe_max_kwh: 950
  battery_charge_limit_kw: 250
  battery_discharge_limit_kw: 250
  site_import_limit_kw: 300
  site_export_limit_kw: 350
  modes:
    - type: export_avoidance
      periods: [{days: weekdays, start: "09:00", end: "15:00"}]
    - type: charge_to_soe
      periods:
        - {start: "01:00", end: "04:00", timezone: Europe/London}
      params: {soe_kwh: 700}
market:
  axle:
    base_url: http://127.0.0.1:18092
    asset_id: a1
    username: ${AXLE_USER}
    password: ${AXLE_PASS}
uploader:
  sinks:
    - {type: postgrest, name: cloud, url: "http://127.0.0.1:18093", api_key: "${KEY}"}
mqtt:
  host: 127.0.0.1
"""

# (case, snippet in BASE, replacement, line, col, dotted path, message fragment)
CASES = [
    ("yaml syntax: unclosed flow sequence", "  name: Test", "  name: [Test", 4, 8, "(yaml)", "expected ','"),
    ("yaml syntax: bad indentation", "    port: 15021", "   port: 15021", 16, 4, "(yaml)", "expected <block end>"),
    ("duplicate key", "    port: 15020", "    port: 15020\n    port: 15022", 10, 5, "devices.0.port", "duplicate key"),
    ("unknown top-level key", "mqtt:\n", "mqt:\n", 42, 1, "mqt", "did you mean 'mqtt'?"),
    ("unknown device key", "    host: 127.0.0.1\n    port: 15020", "    hots: 127.0.0.1\n    port: 15020", 8, 5,
     "devices.0.hots", "did you mean 'host'?"),
    ("unknown controller key", "  soe_min_kwh: 50", "  soe_min_kw: 50", 20, 3, "controller.soe_min_kw",
     "did you mean 'soe_min_kwh'?"),
    ("unknown device type", "  - type: acuvim2", "  - type: acuvim", 12, 11, "devices.1.type",
     "did you mean 'acuvim2'?"),
    ("missing device type", "  - type: acuvim2\n    name: site-meter", "  - name: site-meter", 12, 5,
     "devices.1.type", "required field is missing"),
    ("missing required device field", "    nameplate_energy_kwh: 1000\n", "", 5, 5,
     "devices.0.nameplate_energy_kwh", "required field is missing"),
    ("wrong type: port is text", "    port: 15021", "    port: meter", 16, 11, "devices.1.port", "valid integer"),
    ("unit in a number", "    nameplate_power_kw: 250", "    nameplate_power_kw: 250kW", 10, 25,
     "devices.0.nameplate_power_kw", "plain number in kW"),
    ("unit in seconds field", "    port: 15021", "    port: 15021\n    poll_interval_s: 5s", 17, 22,
     "devices.1.poll_interval_s", "plain number in seconds"),
    ("port out of range", "    port: 15020", "    port: 70000", 9, 11, "devices.0.port", "less than or equal to 65535"),
    ("bad uuid", "    id: 00000000-0000-4000-8000-000000000002", "    id: not-a-uuid", 14, 9, "devices.1.id", "UUID"),
    ("negative power limit", "  battery_charge_limit_kw: 250", "  battery_charge_limit_kw: -5", 22, 28,
     "controller.battery_charge_limit_kw", "greater than or equal to 0"),
    ("soe min above max", "  soe_min_kwh: 50", "  soe_min_kwh: 960", 20, 16, "controller.soe_min_kwh",
     "must be below soe_max_kwh"),
    ("soe max above nameplate", "  soe_max_kwh: 950", "  soe_max_kwh: 1200", 21, 16, "controller.soe_max_kwh",
     "nameplate energy"),
    ("limit above nameplate power", "  battery_discharge_limit_kw: 250", "  battery_discharge_limit_kw: 300", 23, 31,
     "controller.battery_discharge_limit_kw", "nameplate power"),
    ("site meter does not exist", "  site_meter: site-meter", "  site_meter: site-metre", 18, 15,
     "controller.site_meter", "did you mean 'site-meter'?"),
    ("battery refers to a meter", "  battery: bess", "  battery: site-meter", 19, 12, "controller.battery",
     "is of type acuvim2"),
    ("duplicate device name", "    name: site-meter", "    name: bess", 13, 11, "devices.1.name", "duplicate device name"),
    ("duplicate device id", "    id: 00000000-0000-4000-8000-000000000002", "    id: 00000000-0000-4000-8000-000000000001",
     14, 9, "devices.1.id", "duplicate device id"),
    ("unknown site timezone", "  name: Test", "  name: Test\n  timezone: Europe/Londn", 4, 13, "site.timezone",
     "did you mean 'Europe/London'?"),
    ("unknown period timezone", "timezone: Europe/London}", "timezone: Europe/Paris2}", 31, 52,
     "controller.modes.1.periods.0.timezone", "unknown timezone"),
    ("unknown day name", "days: weekdays,", "days: [mon, tuesdy],", 28, 24, "controller.modes.0.periods.0.days",
     "did you mean 'tuesday'?"),
    ("empty period", 'start: "01:00", end: "04:00"', 'start: "01:00", end: "01:00"', 31, 33,
     "controller.modes.1.periods.0.end", "period is empty"),
    ("bad clock time", 'end: "15:00"', 'end: "25:00"', 28, 55, "controller.modes.0.periods.0.end", "got '25:00'"),
    ("overlapping periods of one mode", '      periods: [{days: weekdays, start: "09:00", end: "15:00"}]',
     '      periods: [{days: weekdays, start: "09:00", end: "15:00"}, {days: [fri], start: "14:00", end: "16:00"}]',
     28, 65, "controller.modes.0.periods.1", "overlaps periods.0"),
    ("unknown mode type", "    - type: export_avoidance", "    - type: export_avoidence", 27, 13,
     "controller.modes.0.type", "did you mean 'export_avoidance'?"),
    ("mode without periods", '      periods: [{days: weekdays, start: "09:00", end: "15:00"}]\n', "", 27, 7,
     "controller.modes.0.periods", "required field is missing"),
    ("mode params missing field", "params: {soe_kwh: 700}", "params: {soe: 700}", 32, 16,
     "controller.modes.1.params.soe", "unknown key 'soe'"),
    ("mode priority out of range", "    - type: charge_to_soe", "    - type: charge_to_soe\n      priority: 0", 30, 17,
     "controller.modes.1.priority", "greater than or equal to 1"),
    ("secret variable unset", "    password: ${AXLE_PASS}", "    password: ${AXLE_PASSWORD}", 38, 15,
     "market.axle.password", "environment variable AXLE_PASSWORD is not set"),
    ("env reference in a non-secret field", "    asset_id: a1", "    asset_id: ${ASSET}", 36, 15,
     "market.axle.asset_id", "only allowed in secret fields"),
    ("unknown sink type", "{type: postgrest,", "{type: postgrst,", 41, 14, "uploader.sinks.0.type",
     "did you mean 'postgrest'?"),
    ("site id not a slug", "  id: t1", "  id: Test Site", 2, 7, "site.id", "should match pattern"),
    ("no devices at all", BASE[BASE.index("devices:"):BASE.index("controller:")], "devices: []\n", 4, 10, "devices",
     "at least 1 item"),
    ("section is not a mapping", "mqtt:\n  host: 127.0.0.1\n", "mqtt: yes\n", 42, 7, "mqtt", "valid dictionary"),
    ("poll interval does not divide a day", "    port: 15021", "    port: 15021\n    poll_interval_s: 7", 17, 22,
     "devices.1.poll_interval_s", "divide a day evenly"),
]


def _problems(text: str) -> list[str]:
    try:
        parse_site(text, "site.yaml", ENV)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_base_is_valid() -> None:
    assert _problems(BASE) == []


@pytest.mark.parametrize(("case", "old", "new", "line", "col", "path", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_broken_file(case: str, old: str, new: str, line: int, col: int, path: str, fragment: str) -> None:
    assert BASE.count(old) == 1, f"snippet must be unique in BASE: {old!r}"
    problems = _problems(BASE.replace(old, new))
    prefix = f"site.yaml:{line}:{col}: {path}: "
    matching = [p for p in problems if p.startswith(prefix)]
    assert matching, f"expected a problem at {prefix!r}, got {problems}"
    assert fragment in matching[0], matching[0]


def test_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_every_problem_reported_at_once() -> None:
    text = (BASE.replace("    host: 127.0.0.1\n    port: 15020", "    hots: 127.0.0.1\n    port: 15020")
            .replace("  - type: acuvim2", "  - type: acuvim")
            .replace("days: weekdays,", "days: [sundy],")
            .replace("    asset_id: a1", "    asset_id: ${ASSET}"))
    paths = {p.split(": ")[1] for p in _problems(text)}
    assert {"devices.0.hots", "devices.1.type", "controller.modes.0.periods.0.days", "market.axle.asset_id"} <= paths


def test_secret_value_never_in_errors() -> None:
    text = BASE.replace("    asset_id: a1", "    asset_id: ''")
    problems = _problems(text)
    assert problems and not any("axle-pass" in p or "anon-key" in p for p in problems)
