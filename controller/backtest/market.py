"""Recorded market data as the engine would have seen it, and as it settles.

Publication model: an SP's price and NIV count as known from `published_after_s` after the SP starts
(default: the SP's end, when its outturn exists). At time t the cache holds the newest SP known by then,
exactly as the Modo client caches the newest value with its SP; nothing later leaks into a decision.
Revenue is settled on each SP's recorded price.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime

from controller.backtest.inputs import Settlement
from controller.engine.settlement import SP_S
from controller.engine.site_state import MarketValue

PUBLISHED_AT_SP_END_S = float(SP_S)


class RecordedMarket:
    def __init__(self, settlements: Sequence[Settlement], published_after_s: float = PUBLISHED_AT_SP_END_S) -> None:
        self.settlements = sorted(settlements, key=lambda s: s.start)
        self.published_after_s = published_after_s
        self._published = [s.start.timestamp() + published_after_s for s in self.settlements]
        # GB SPs start on UTC half hours (the UK offset is a whole hour), so an epoch key finds them.
        self._by_start = {int(s.start.timestamp()): s for s in self.settlements}

    def known_at(self, now: datetime) -> tuple[MarketValue | None, MarketValue | None]:
        """(price p/kWh, NIV MWh) of the newest SP published by `now`, each tagged with the SP's UTC start."""
        i = bisect.bisect_right(self._published, now.timestamp()) - 1
        if i < 0:
            return None, None
        s = self.settlements[i]
        return MarketValue(s.price_p_per_kwh, s.start), MarketValue(s.niv, s.start)

    def settlement_at(self, t: float) -> Settlement | None:
        """The SP containing epoch second `t` (None outside the recorded data)."""
        return self._by_start.get(int(t // SP_S) * SP_S)
