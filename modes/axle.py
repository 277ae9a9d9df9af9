"""Axle Energy dispatch: the first schedule step covering now decides."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.config import Period, Periods
from controller.core.logs import get_logger
from controller.core.schema import Field
from controller.engine.proposal import INF, Proposal, export_avoidance, import_avoidance
from controller.engine.schedule import Window
from controller.engine.site_state import AxleStep, SiteState
from modes.base import ModeConfigBase, ModeContext, NoParams, PeriodMode

log = get_logger("modes.axle")

KNOWN_ACTIONS = ("charge_max", "discharge_max", "avoid_import", "avoid_export")


def _always() -> list[Period]:
    return [Period.model_validate({"start": "00:00", "end": "24:00"})]


class AxleModeConfig(ModeConfigBase):
    type: Literal["axle"]
    periods: Periods = Field(default_factory=_always, description="default: always (Axle's schedule decides)")
    params: NoParams = Field(default_factory=NoParams)


class Axle(PeriodMode[AxleModeConfig]):
    """Axle's dispatch: the first schedule step covering now decides. Unknown actions are logged, counted
    (once per step) and ignored."""

    def __init__(self, config: AxleModeConfig, ctx: ModeContext, name: str) -> None:
        super().__init__(config, ctx, name)
        self.unknown_actions = 0
        self._reported: set[tuple[datetime, str]] = set()

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        step = next((s for s in state.axle_schedule if s.covers(now)), None)
        if step is None:
            return None
        if step.action == "charge_max":
            return Proposal(-INF, -INF, -INF)
        if step.action == "discharge_max":
            return Proposal(INF, INF, INF)
        if state.site_power_kw is None:
            return None
        if step.action == "avoid_import":
            return import_avoidance(state.residual_load_kw)
        if step.action == "avoid_export":
            return export_avoidance(state.residual_load_kw)
        self._unknown(step)
        return None

    def _unknown(self, step: AxleStep) -> None:
        key = (step.start, step.action)
        if key in self._reported:
            return
        if len(self._reported) > 1000:
            self._reported.clear()
        self._reported.add(key)
        self.unknown_actions += 1
        log.warning("axle_unknown_action", action=step.action, start=step.start.isoformat())
