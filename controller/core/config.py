"""Building blocks of the site file: the strict base model, secrets, timezones, periods and rates."""

from __future__ import annotations

import difflib
import functools
import os
import re
import types
import typing
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from datetime import time
from typing import Annotated, Any

from controller.core.logs import register_secret
from controller.core.schema import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PydanticCustomError,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

Path = tuple[str | int, ...]
ProblemList = Iterator[tuple[Path, str]]

DEFAULT_TIMEZONE = "Europe/London"


class ConfigModel(BaseModel):
    """Strict and immutable: unknown keys are errors, a loaded config is never mutated (reload replaces it)."""

    # Non-finite numbers (`.inf`, `.nan`) are refused everywhere: a limit of .inf is no limit.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """`period_s: true` is not 1 second: a boolean where a number belongs is an error."""
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(field.alias or name)
                if isinstance(value, bool) and _wants_number_not_bool(field.annotation):
                    raise PydanticCustomError(
                        "bool_for_number", "{name}: expected a number, got the boolean {v}",
                        {"name": field.alias or name, "v": str(value).lower()})
        return data

    def problems(self) -> ProblemList:
        """Cross-field checks pydantic cannot express, within this model. Yields (path relative to it, message).

        Checks that span parts of the site (a device named by the controller) live in the site model.
        """
        return iter(())


def _wants_number_not_bool(ann: Any) -> bool:
    """True when the annotation takes an int or float but not a bool (unions and Annotated unwrapped)."""
    seen: set[Any] = set()

    def members(a: Any) -> Iterator[Any]:
        if id(a) in seen:
            return
        seen.add(id(a))
        args = typing.get_args(a)
        origin = typing.get_origin(a)
        if origin is typing.Annotated:
            yield from members(args[0])
        elif origin in (typing.Union, types.UnionType):
            for m in args:
                yield from members(m)
        else:
            yield a

    kinds = list(members(ann))
    return bool not in kinds and any(k in (int, float) for k in kinds)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


# --- secrets ---------------------------------------------------------------------------------------

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")  # what a secret field takes: a whole upper-case name
# Secrets written into the site file are refused (a file is copied, pushed and logged; the environment
# file is root's). The test suite's fixtures write throw-away keys inline: tests/conftest.py sets
# FLUX_ALLOW_INLINE_SECRETS=1 (in the environment, so the daemons the tests start as processes see it too).
INLINE_SECRETS_ENV = "FLUX_ALLOW_INLINE_SECRETS"


def _resolve_env(value: Any, info: ValidationInfo) -> Any:
    """`${NAME}` (a whole upper-case variable name) from the environment; any other `${` is refused."""
    if not isinstance(value, str):
        return value
    ctx = info.context or {}
    ref = SECRET_REF.fullmatch(value.strip())
    if ref:
        env: Mapping[str, str] = ctx.get("env", os.environ)
        name = ref.group(1)
        if name not in env:
            raise PydanticCustomError("secret_unset", "environment variable {name} is not set", {"name": name})
        return env[name]
    if "${" in value:
        raise PydanticCustomError(
            "secret_ref", "a secret takes a whole upper-case environment variable name, like ${FLUX_API_KEY}; "
            "'{v}' is not one", {"v": value[:60]})
    return value


def _resolve_secret(value: Any, info: ValidationInfo) -> Any:
    inline = isinstance(value, str) and SECRET_REF.fullmatch(value.strip()) is None
    value = _resolve_env(value, info)
    if not isinstance(value, str):
        return value
    ctx = info.context or {}
    if inline and not ctx.get("allow_inline_secrets", os.environ.get(INLINE_SECRETS_ENV) == "1"):
        raise PydanticCustomError(
            "inline_secret", "secrets are not written in the site file: give ${ENV_NAME} and set ENV_NAME in "
            "the environment file (/etc/flux-edge/flux-edge.env)", {})
    register_secret(value)
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve_secret)]
"""A secret field: `${ENV_NAME}` is resolved from the environment at load; the value never prints."""

Credential = Annotated[SecretStr, BeforeValidator(_resolve_env)]
"""An identifier that goes with a secret (a login name): `${ENV_NAME}` may supply it and it is kept out of
reprs, but it is not redacted from log lines, where a short common value (`demo`, the site id) would
mask every other occurrence of that word."""


# --- timezones -------------------------------------------------------------------------------------


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_timezone(name: str) -> str:
    if len(name) > 64:
        raise PydanticCustomError("unknown_timezone", "not a timezone name ({n} characters)", {"n": len(name)})
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise PydanticCustomError(
            "unknown_timezone", "unknown timezone '{name}'{hint}",
            {"name": name, "hint": did_you_mean(name, _zone_names())},
        ) from None
    return name


TimezoneName = Annotated[str, AfterValidator(_check_timezone)]


# --- periods ---------------------------------------------------------------------------------------

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_ALIASES = {d[:3]: d for d in DAY_NAMES} | {d: d for d in DAY_NAMES}
_DAY_GROUPS = {"all": DAY_NAMES, "weekdays": DAY_NAMES[:5], "weekends": DAY_NAMES[5:]}
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
MINUTES_PER_WEEK = 7 * 24 * 60


def _parse_days(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise PydanticCustomError(
            "days", "days must be 'all', 'weekdays', 'weekends' or a list of day names")
    days: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise PydanticCustomError("days", "day names must be strings, got '{v}'", {"v": str(item)})
        key = item.strip().lower()
        if key in _DAY_GROUPS:
            days.extend(_DAY_GROUPS[key])
        elif key in _DAY_ALIASES:
            days.append(_DAY_ALIASES[key])
        else:
            raise PydanticCustomError(
                "unknown_day", "unknown day '{day}'{hint}",
                {"day": item, "hint": did_you_mean(key, [*_DAY_ALIASES, *_DAY_GROUPS])},
            )
    return sorted(set(days), key=DAY_NAMES.index)


def _parse_clock(value: Any) -> Any:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        m = _TIME_RE.fullmatch(value.strip())
        if m:
            h, mnt, s = int(m[1]), int(m[2]), int(m[3] or 0)
            if (h, mnt, s) == (24, 0, 0):
                return time.max  # "24:00": the end of the day
            if h < 24 and mnt < 60 and s < 60:
                return time(h, mnt, s)
    raise PydanticCustomError(
        "clock_time", "expected a clock time HH:MM or HH:MM:SS (24:00 for the end of the day), got '{v}'",
        {"v": str(value)})


ClockTime = Annotated[time, BeforeValidator(_parse_clock)]


def _seconds_of_day(t: time) -> int:
    return 86400 if t == time.max else t.hour * 3600 + t.minute * 60 + t.second


class Period(ConfigModel):
    """A recurring window of local time: start inclusive, end exclusive; an end before the start
    crosses midnight (the window belongs to the day it starts on)."""

    days: Annotated[list[str], BeforeValidator(_parse_days)] = Field(
        default_factory=lambda: list(DAY_NAMES),
        description="'all', 'weekdays', 'weekends' or a list of day names (mon..sun or monday..sunday)")
    start: ClockTime = Field(description="local clock time HH:MM[:SS], inclusive")
    end: ClockTime = Field(description="local clock time HH:MM[:SS] (24:00 = end of day), exclusive")
    # None is replaced by the site's timezone while validating (see _default_tz).
    timezone: TimezoneName = Field(
        default=None, validate_default=True,
        description="IANA timezone; defaults to the site's timezone")

    @field_validator("timezone", mode="before")
    @classmethod
    def _default_tz(cls, v: Any, info: ValidationInfo) -> Any:
        return v if v is not None else (info.context or {}).get("timezone", DEFAULT_TIMEZONE)

    @property
    def start_s(self) -> int:
        return _seconds_of_day(self.start)

    @property
    def duration_s(self) -> int:
        end = _seconds_of_day(self.end)
        return (end - self.start_s) % 86400 if end != 86400 else 86400 - self.start_s

    def week_intervals(self) -> list[tuple[int, int]]:
        """Minutes-of-week intervals [a, b) this period covers (ignoring DST), for overlap checks."""
        out = []
        for day in self.days:
            a = DAY_NAMES.index(day) * 1440 + self.start_s // 60
            b = a + -(-self.duration_s // 60)
            if b > MINUTES_PER_WEEK:
                out += [(a, MINUTES_PER_WEEK), (0, b - MINUTES_PER_WEEK)]
            else:
                out.append((a, b))
        return out

    def overlaps(self, other: Period) -> bool:
        if self.timezone != other.timezone:
            return False
        return any(a < d and c < b for a, b in self.week_intervals() for c, d in other.week_intervals())

    def problems(self) -> ProblemList:
        if self.duration_s == 0:
            yield ("end",), "period is empty: start and end are the same time"


def _widen_single_period(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


Periods = Annotated[list[Period], BeforeValidator(_widen_single_period), Field(min_length=1)]


def overlapping_pairs(periods: list[Period]) -> Iterator[tuple[int, int]]:
    for i, p in enumerate(periods):
        for j in range(i + 1, len(periods)):
            if p.overlaps(periods[j]):
                yield i, j


class TimedRate(ConfigModel):
    """A price adder (p/kWh) that applies in its periods, e.g. a DUoS band."""

    rate: float = Field(description="p/kWh")
    periods: Periods
