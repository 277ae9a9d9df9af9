"""What every mode shares: the site file's common mode entry, the site-wide settings, and the Mode classes.

A mode class names its config class once, as its generic parameter (`class NivChase(PeriodMode[NivChaseConfig])`);
its `type` is that config's `type` Literal, so a type name is written once per mode.
"""

from __future__ import annotations

import abc
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from controller.core.config import ConfigModel, Periods, ProblemList, TimedRate, overlapping_pairs
from controller.core.schema import Field, field_validator, literal_values
from controller.engine.envelope import Limits
from controller.engine.proposal import Proposal
from controller.engine.rates import rate_now
from controller.engine.schedule import Window, window_at
from controller.engine.site_state import SiteState


class NoParams(ConfigModel):
    pass


class ModeConfigBase(ConfigModel):
    """What every mode entry of the site file has in common."""

    type: str
    name: str | None = Field(default=None, description="label in logs and decision records")
    priority: int | None = Field(
        default=None, ge=1, le=1000, description="1 = highest; default: the spec's order of mode types")
    periods: Periods

    @field_validator("params", mode="before", check_fields=False)
    @classmethod
    def _empty_params(cls, v: Any) -> Any:
        return {} if v is None else v

    def problems(self) -> ProblemList:
        for i, j in overlapping_pairs(self.periods):
            yield ("periods", j), f"overlaps periods.{i} of the same mode"


C = TypeVar("C", bound=ModeConfigBase)


@dataclass(frozen=True, slots=True)
class ModeContext:
    """Site-wide settings modes depend on (efficiency, limits, rates); the application builds it."""

    charge_efficiency: float
    limits: Limits
    import_rates: tuple[TimedRate, ...] = ()
    export_rates: tuple[TimedRate, ...] = ()

    def import_rate(self, now: datetime) -> float:
        return rate_now(self.import_rates, now)

    def export_rate(self, now: datetime) -> float:
        return rate_now(self.export_rates, now)


def _config_type_of(cls: type) -> type[ModeConfigBase] | None:
    """The config class a mode class binds as its generic parameter (`Mode[X]`, `PeriodMode[X]`), if any."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Mode):
            for arg in typing.get_args(base):
                if isinstance(arg, type) and issubclass(arg, ModeConfigBase):
                    return arg
    return None


class Mode(abc.ABC, Generic[C]):
    """A mode maps (SiteState, now) to a Proposal, or None when it has nothing to say."""

    config_type: ClassVar[type[ModeConfigBase]]
    type: ClassVar[str]  # the config's `type` Literal: the name the site file and a mode override use

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        config_type = _config_type_of(cls)
        if config_type is None:
            # Still generic (PeriodMode) or a subclass of a concrete mode: nothing new to bind.
            return
        literal = literal_values(config_type, "type")
        if len(literal) != 1 or not isinstance(literal[0], str):
            raise TypeError(f"{config_type.__name__}.type must be a Literal of one string, e.g. Literal['my_mode']")
        cls.config_type = config_type
        cls.type = literal[0]

    def __init__(self, config: C, ctx: ModeContext, name: str) -> None:
        self.config = config
        self.ctx = ctx
        self.name = name

    @abc.abstractmethod
    def propose(self, state: SiteState, now: datetime) -> Proposal | None:
        """This tick's proposal (None: inactive)."""


class PeriodMode(Mode[C]):
    """A mode that acts only while one of its periods covers `now`."""

    def propose(self, state: SiteState, now: datetime) -> Proposal | None:
        window = window_at(self.config.periods, now)
        if window is None:
            return None
        return self.propose_in(state, now, window)

    @abc.abstractmethod
    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        """The proposal while `window` (an occurrence of one of the mode's periods) covers `now`."""
