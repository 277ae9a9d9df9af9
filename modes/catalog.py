"""The one catalog of control modes: every mode type the site file may name, in the default priority order.

`MODES` lists the mode classes, highest default priority first. Everything else is derived from it:
`DEFAULT_ORDER` (the type names), `ModeConfig` (the site file's discriminated union of mode entries) and
`build_modes` (a site's modes, sorted by priority). Adding a control mode therefore means: its own file
`modes/<mode>.py` holding its config class (with `type: Literal["<mode>"]`, the only place the type name
is written) and its Mode class (`class MyMode(PeriodMode[MyModeConfig])`), one entry in `MODES` at its
place in the default order, and its test under `tests/modes/`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Union

from controller.core.schema import Field
from modes.axle import Axle
from modes.base import Mode, ModeConfigBase, ModeContext
from modes.charge_to_soe import ChargeToSoe
from modes.discharge_to_soe import DischargeToSoe
from modes.dynamic_peak_approach import DynamicPeakApproach
from modes.dynamic_peak_discharge import DynamicPeakDischarge
from modes.export_avoidance import ExportAvoidance
from modes.import_avoidance import ImportAvoidance
from modes.import_avoidance_when_short import ImportAvoidanceWhenShort
from modes.niv_chase import NivChase
from modes.plan import PlanMode

MODES: tuple[type[Mode[Any]], ...] = (
    Axle,
    PlanMode,  # under Axle's commitments, above the rule-based modes (modes/plan.py says why)
    DischargeToSoe,
    DynamicPeakDischarge,
    NivChase,
    ChargeToSoe,
    DynamicPeakApproach,
    ImportAvoidance,
    ExportAvoidance,
    ImportAvoidanceWhenShort,
)

DEFAULT_ORDER: tuple[str, ...] = tuple(m.type for m in MODES)
_BY_TYPE: dict[str, type[Mode[Any]]] = {m.type: m for m in MODES}
# A second mode of the same type would silently shadow the first here and in the union.
if len(_BY_TYPE) != len(MODES):
    raise TypeError(f"two catalog modes share a type: {sorted(t for t, n in Counter(DEFAULT_ORDER).items() if n > 1)}")

if TYPE_CHECKING:
    # mypy cannot follow a union built at runtime; every member is a ModeConfigBase.
    ModeConfig = ModeConfigBase
else:
    # Union[...] because the members are a runtime tuple, which `X | Y` cannot spell.
    ModeConfig = Annotated[Union[tuple(m.config_type for m in MODES)], Field(discriminator="type")]  # noqa: UP007


def priority_key(mode: ModeConfigBase, index: int) -> tuple[int, int, int]:
    """Sort key of the mode entry at `index`: explicit priority, else the catalog's order of types (rank x 100);
    the catalog's order, then file order, break ties."""
    default_rank = DEFAULT_ORDER.index(mode.type) + 1
    return (mode.priority if mode.priority is not None else default_rank * 100, default_rank, index)


def build_modes(configs: Sequence[ModeConfigBase], ctx: ModeContext) -> list[Mode[Any]]:
    """The site's modes, highest priority first. A mode is named by its `name`, else its type (with `#2`,
    `#3`... when a type appears more than once)."""
    order = sorted(range(len(configs)), key=lambda i: priority_key(configs[i], i))
    types = Counter(m.type for m in configs)
    seen: Counter[str] = Counter()
    modes: list[Mode[Any]] = []
    for i in order:
        cfg = configs[i]
        seen[cfg.type] += 1
        name = cfg.name or (cfg.type if types[cfg.type] == 1 or seen[cfg.type] == 1 else f"{cfg.type}#{seen[cfg.type]}")
        modes.append(_BY_TYPE[cfg.type](cfg, ctx, name))
    return modes
