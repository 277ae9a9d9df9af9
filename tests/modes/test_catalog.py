"""The mode catalog: one entry per mode, the type name written once, priority order and naming."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Any, Literal

import pytest

from controller.config.site import ControllerConfig
from controller.engine.proposal import Proposal
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, NoParams, PeriodMode
from modes.catalog import DEFAULT_ORDER, MODES, build_modes
from tests.modes.util import CONTROLLER

ALWAYS = [{"start": "00:00", "end": "24:00"}]


def test_default_order_is_the_spec_order_with_plan_under_axle() -> None:
    # `plan` is ours (modes/plan.py): under Axle's commitments, above every rule-based mode.
    assert DEFAULT_ORDER == ("axle", "plan", "discharge_to_soe", "dynamic_peak_discharge", "niv_chase", "charge_to_soe",
                             "dynamic_peak_approach", "import_avoidance", "export_avoidance",
                             "import_avoidance_when_short")


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.__name__)
def test_a_mode_type_is_its_config_literal(mode: type[Any]) -> None:
    assert typing.get_args(mode.config_type.model_fields["type"].annotation) == (mode.type,)


def test_a_new_mode_takes_its_type_from_its_config() -> None:
    class ExampleConfig(ModeConfigBase):
        type: Literal["example"]
        params: NoParams = NoParams()

    class Example(PeriodMode[ExampleConfig]):
        def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
            return None

    assert Example.type == "example"
    assert Example.config_type is ExampleConfig


def test_a_config_type_that_is_not_one_literal_string_is_refused() -> None:
    class VagueConfig(ModeConfigBase):
        type: str

    with pytest.raises(TypeError, match="Literal of one string"):
        class Vague(PeriodMode[VagueConfig]):
            def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
                return None


def test_modes_sort_by_priority_then_default_order_then_file_order_and_repeated_types_are_numbered() -> None:
    entries: list[dict[str, Any]] = [
        {"type": "export_avoidance", "periods": [{"start": "00:00", "end": "12:00"}]},
        {"type": "import_avoidance", "periods": ALWAYS},
        {"type": "export_avoidance", "periods": [{"start": "12:00", "end": "24:00"}]},
        {"type": "charge_to_soe", "name": "top-up", "priority": 1, "periods": ALWAYS, "params": {"soe_kwh": 500}},
        {"type": "axle"},
    ]
    cfg = ControllerConfig.model_validate({**CONTROLLER, "modes": entries})
    names = [m.name for m in build_modes(cfg.modes, cfg.mode_context())]
    assert names == ["top-up", "axle", "import_avoidance", "export_avoidance", "export_avoidance#2"]
    assert [m.name for m in cfg.decider().modes] == names
    assert sorted(range(len(entries)), key=cfg.effective_priority) == [3, 4, 1, 0, 2]
