"""Modo's public GB imbalance data: the latest system price and net imbalance volume, each with its SP.

Price and volume are polled alternately. Every answer is checked: non-200s, malformed bodies, empty
results and entries for a settlement period that has not started yet are counted and change nothing;
the cache keeps the newest good value. £/MWh is converted to p/kWh (/10).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import date, datetime
from typing import Any, Literal

import httpx

from controller.core.clock import Clock
from controller.core.httpclient import client_options
from controller.core.logs import get_logger
from controller.engine.settlement import sp_start, today_gb
from controller.engine.site_state import MarketValue
from controller.market.config import ModoConfig

log = get_logger("market.modo")

Kind = Literal["price", "volume"]
ENDPOINTS: dict[Kind, tuple[str, str]] = {
    "price": ("/pub/v1/gb/modo/markets/system-price-live", "system_price"),
    "volume": ("/pub/v1/gb/modo/markets/niv-live", "niv"),
}


class ModoClient:
    def __init__(self, config: ModoConfig, clock: Clock, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.clock = clock
        self._http = http
        self.price: MarketValue | None = None  # p/kWh
        self.volume: MarketValue | None = None  # MWh, + = system short
        self.counts: Counter[str] = Counter()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.config.base_url, timeout=self.config.timeout_s,
                                           **client_options())
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _entry(self, item: Any, field: str, now: datetime) -> MarketValue | None:
        if not isinstance(item, dict):
            self.counts["malformed_entries"] += 1
            return None
        try:
            day = date.fromisoformat(str(item["date"]))
            number = item["settlement_period"]
            value = item[field]
        except (KeyError, ValueError):
            self.counts["malformed_entries"] += 1
            return None
        if (isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 50
                or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
            self.counts["malformed_entries"] += 1
            return None
        start = sp_start(day, number)
        if start > now:
            self.counts["future_rejected"] += 1
            log.warning("modo_future_period_rejected", field=field, date=str(day), settlement_period=number)
            return None
        return MarketValue(float(value) / 10 if field == "system_price" else float(value), start)

    def parse(self, kind: Kind, body: Any, now: datetime) -> MarketValue | None:
        """The newest usable entry of an answer, or None (counted)."""
        _, field = ENDPOINTS[kind]
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            self.counts["malformed"] += 1
            return None
        if not results:
            self.counts["empty"] += 1
            return None
        entries = [e for e in (self._entry(item, field, now) for item in results) if e is not None]
        if not entries:
            return None
        return max(entries, key=lambda e: e.settlement_period)

    async def fetch(self, kind: Kind) -> MarketValue | None:
        path, _ = ENDPOINTS[kind]
        now = self.clock.now()
        day = today_gb(now).isoformat()
        self.counts["requests"] += 1
        try:
            response = await self._client().get(path, params={"date_from": day, "date_to": day})
        except httpx.HTTPError as exc:
            self.counts["errors"] += 1
            log.warning("modo_request_failed", kind=kind, error=repr(exc))
            return None
        if response.status_code != 200:
            self.counts["errors"] += 1
            log.warning("modo_bad_status", kind=kind, status=response.status_code)
            return None
        try:
            body = response.json()
        except ValueError:
            self.counts["malformed"] += 1
            log.warning("modo_malformed_body", kind=kind)
            return None
        value = self.parse(kind, body, now)
        if value is None:
            return None
        cached = self.price if kind == "price" else self.volume
        if cached is None or value.settlement_period >= cached.settlement_period:
            if kind == "price":
                self.price = value
            else:
                self.volume = value
            self.counts["updates"] += 1
        return value

    async def run(self) -> None:
        try:
            while True:
                for kind in ("price", "volume"):
                    await self.fetch(kind)
                    await self.clock.sleep(self.config.poll_interval_s / 2)
        finally:
            await asyncio.shield(self.close())

