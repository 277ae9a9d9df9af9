"""What every mode's logic shares: its config, the site-wide settings it needs, and its schedule."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

from controller.config.site import ControllerConfig
from controller.core.config import TimedRate
from controller.engine.envelope import Limits
from controller.engine.proposal import Proposal
from controller.engine.rates import rate_now
from controller.engine.schedule import Window, window_at
from controller.engine.site_state import SiteState
from modes.config import ModeConfigBase

C = TypeVar("C", bound=ModeConfigBase)


@dataclass(frozen=True, slots=True)
class ModeContext:
    """Site-wide settings modes depend on (efficiency, limits, rates)."""

    charge_efficiency: float
    limits: Limits
    import_rates: tuple[TimedRate, ...] = ()
    export_rates: tuple[TimedRate, ...] = ()

    @classmethod
    def of(cls, c: ControllerConfig) -> ModeContext:
        return cls(c.charge_efficiency, Limits.of(c), tuple(c.import_rates), tuple(c.export_rates))

    def import_rate(self, now: datetime) -> float:
        return rate_now(self.import_rates, now)

    def export_rate(self, now: datetime) -> float:
        return rate_now(self.export_rates, now)


class Mode(abc.ABC, Generic[C]):
    """A mode maps (SiteState, now) to a Proposal, or None when it has nothing to say."""

    type: ClassVar[str]

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
