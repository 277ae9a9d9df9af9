"""Hard limits: the battery's nameplate, the site's connection limits, the SoE bounds and the maximum
reading age, in a small root-owned file on the box (`FLUX_LIMITS_FILE`, set in the systemd unit:
`/etc/flux-edge-limits.yaml`, outside the directory the daemon may write).

A site file, wherever it comes from (boot, SIGHUP, `config apply`, an MQTT `reload`, the admin
endpoint), may tighten these, never widen them: a widening value is a validation error like any other,
so a pushed file that widens one is refused whole and the running config stays. Without the variable
there are no hard limits (development, tests); with it set and the file unreadable or invalid, no site
file validates (fail closed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path as FsPath

import yaml
from pydantic import ValidationError  # validating only: never imported by the daemon's own process

from controller.core.config import ConfigModel, Path
from controller.core.schema import Field

LIMITS_FILE_ENV = "FLUX_LIMITS_FILE"
MAX_LIMITS_FILE_BYTES = 16 * 1024


class HardLimits(ConfigModel):
    battery_power_kw: float = Field(
        gt=0, description="caps nameplate_power_kw and the battery's charge/discharge limits")
    battery_energy_kwh: float | None = Field(
        default=None, gt=0, description="caps nameplate_energy_kwh and soe_max_kwh")
    site_import_limit_kw: float = Field(ge=0)
    site_export_limit_kw: float = Field(ge=0)
    soe_min_kwh: float = Field(ge=0, description="the site file's soe_min_kwh may only be higher")
    soe_max_kwh: float = Field(gt=0, description="the site file's soe_max_kwh may only be lower")
    max_reading_age_s: float = Field(gt=0, le=300)
    min_site_limit_margin_kw: float = Field(default=0.0, ge=0)


class HardLimitsError(ValueError):
    """The limits file itself is unreadable or invalid: one line naming it."""


def load_hard_limits(path: str | FsPath) -> HardLimits:
    p = FsPath(path)
    try:
        raw = p.read_bytes()[:MAX_LIMITS_FILE_BYTES + 1]
    except OSError as exc:
        raise HardLimitsError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_LIMITS_FILE_BYTES:
        raise HardLimitsError(f"{path}: larger than {MAX_LIMITS_FILE_BYTES} bytes")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise HardLimitsError(f"{path}: not a YAML mapping: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise HardLimitsError(f"{path}: expected a mapping of limits")
    try:
        return HardLimits.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"]) or "(document)"
        raise HardLimitsError(f"{path}: {where}: {first['msg']}") from None


def configured_hard_limits() -> tuple[str, HardLimits] | None:
    """(path, limits) from FLUX_LIMITS_FILE, None when it is not set; raises HardLimitsError when unusable."""
    path = os.environ.get(LIMITS_FILE_ENV)
    if not path:
        return None
    return path, load_hard_limits(path)


def widenings(data: object, hard: HardLimits, source: str) -> Iterator[tuple[Path, str]]:
    """(path, message) for every value of a validated site (SiteConfig) that widens a hard limit."""
    tail = f"(hard limit in {source}: a site file may tighten it, never widen it)"
    for i, device in enumerate(getattr(data, "devices", [])):
        power = getattr(device, "nameplate_power_kw", None)
        if power is not None and power > hard.battery_power_kw:
            yield ("devices", i, "nameplate_power_kw"), f"{power:g} kW exceeds {hard.battery_power_kw:g} kW {tail}"
        energy = getattr(device, "nameplate_energy_kwh", None)
        if energy is not None and hard.battery_energy_kwh is not None and energy > hard.battery_energy_kwh:
            yield (("devices", i, "nameplate_energy_kwh"),
                   f"{energy:g} kWh exceeds {hard.battery_energy_kwh:g} kWh {tail}")
    c = getattr(data, "controller", None)
    if c is None:
        return
    above = [("battery_charge_limit_kw", hard.battery_power_kw, "kW"),
             ("battery_discharge_limit_kw", hard.battery_power_kw, "kW"),
             ("site_import_limit_kw", hard.site_import_limit_kw, "kW"),
             ("site_export_limit_kw", hard.site_export_limit_kw, "kW"),
             ("soe_max_kwh", hard.soe_max_kwh, "kWh"),
             ("max_reading_age_s", hard.max_reading_age_s, "s")]
    if hard.battery_energy_kwh is not None:
        above.append(("soe_max_kwh", hard.battery_energy_kwh, "kWh"))
    for key, bound, unit in above:
        value = getattr(c, key)
        if value > bound:
            yield ("controller", key), f"{value:g} {unit} exceeds {bound:g} {unit} {tail}"
    if c.soe_min_kwh < hard.soe_min_kwh:
        yield ("controller", "soe_min_kwh"), f"{c.soe_min_kwh:g} kWh is below {hard.soe_min_kwh:g} kWh {tail}"
    if c.site_limit_margin_kw < hard.min_site_limit_margin_kw:
        yield (("controller", "site_limit_margin_kw"),
               f"{c.site_limit_margin_kw:g} kW is below {hard.min_site_limit_margin_kw:g} kW {tail}")
