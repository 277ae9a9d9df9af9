"""Axle Energy: password login, battery-schedule polling and telemetry upload.

Three independent cadences share one token: the token is refreshed every `token_refresh_s` (and at
once after a 401), the schedule is polled every `schedule_poll_interval_s`, telemetry is uploaded every
`telemetry_upload_interval_s`. Only values read since the last upload, and younger than
`max_telemetry_age_s`, are sent: an old cached value is never re-sent as if it were new. A schedule
not refreshed within `max_schedule_age_s` counts as no schedule.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from controller.core.clock import Clock, utc
from controller.core.httpclient import client_options
from controller.core.logs import get_logger
from controller.core.state import StateStore
from controller.engine.site_state import AxleStep
from controller.market.config import AxleConfig

log = get_logger("market.axle")


@dataclass(frozen=True)
class TelemetrySource:
    """Where each uploaded label comes from in the latest-state store; `negate` flips the sign."""

    label: str
    device_id: UUID
    field: str
    negate: bool = False


class AxleError(Exception):
    pass


def _ts(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("timestamp is not a string")
    return utc(datetime.fromisoformat(value))


class AxleClient:
    def __init__(self, config: AxleConfig, clock: Clock, state: StateStore | None = None,
                 sources: list[TelemetrySource] | None = None, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.clock = clock
        self.state = state
        self.sources = sources or []
        self._http = http
        self._token: str | None = None
        self._token_at: float | None = None
        self._schedule: tuple[AxleStep, ...] = ()
        self.schedule_at: datetime | None = None
        self._sent: dict[str, datetime] = {}  # label -> time of the newest value uploaded
        self.counts: Counter[str] = Counter()

    # --- plumbing ------------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.config.base_url, timeout=self.config.timeout_s,
                                           **client_options())
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def login(self) -> str:
        form = {"username": self.config.username.get_secret_value(),
                "password": self.config.password.get_secret_value()}
        response = await self._client().post("/auth/token-form", data=form)
        if response.status_code != 200:
            raise AxleError(f"login answered {response.status_code}")
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AxleError("login answer has no access_token")
        self._token = token
        self._token_at = self.clock.monotonic()
        self.counts["logins"] += 1
        return token

    async def _authorised(self, send: Callable[[dict[str, str]], Any]) -> httpx.Response:
        """Send with the token, logging in first when there is none and once more after a 401."""
        for attempt in (1, 2):
            token = self._token or await self.login()
            response: httpx.Response = await send({"Authorization": f"Bearer {token}"})
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            return response
        raise AssertionError("unreachable")

    # --- schedule ------------------------------------------------------------------------------------

    @property
    def schedule(self) -> tuple[AxleStep, ...]:
        """The latest schedule, or none when it has not been refreshed for `max_schedule_age_s`."""
        if self.schedule_at is None:
            return ()
        if (self.clock.now() - self.schedule_at).total_seconds() > self.config.max_schedule_age_s:
            return ()
        return self._schedule

    def parse_schedule(self, body: Any) -> tuple[AxleStep, ...] | None:
        steps_raw = body.get("schedule_steps") if isinstance(body, dict) else None
        if not isinstance(steps_raw, list):
            self.counts["malformed"] += 1
            return None
        steps = []
        for item in steps_raw:
            try:
                if not isinstance(item, dict) or not isinstance(item.get("action"), str):
                    raise ValueError("step without an action")
                step = AxleStep(_ts(item.get("start_timestamp")), _ts(item.get("end_timestamp")), item["action"],
                                bool(item.get("allow_deviation", False)))
            except ValueError as exc:
                self.counts["malformed_steps"] += 1
                log.warning("axle_step_skipped", error=str(exc))
                continue
            steps.append(step)
        return tuple(sorted(steps, key=lambda s: s.start))

    async def fetch_schedule(self) -> bool:
        path = f"/entities/asset/{self.config.asset_id}/battery-schedule"
        self.counts["schedule_requests"] += 1
        try:
            response = await self._authorised(lambda h: self._client().get(path, headers=h))
            if response.status_code != 200:
                raise AxleError(f"schedule answered {response.status_code}")
            steps = self.parse_schedule(response.json())
        except (httpx.HTTPError, AxleError, ValueError) as exc:
            self.counts["schedule_errors"] += 1
            log.warning("axle_schedule_failed", error=repr(exc))
            return False
        if steps is None:
            return False
        self._schedule = steps
        self.schedule_at = self.clock.now()
        return True

    # --- telemetry -----------------------------------------------------------------------------------

    def fresh_readings(self, now: datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.state is None:
            return out
        for src in self.sources:
            sample = self.state.get(src.device_id, src.field)
            if sample is None or not math.isfinite(sample.value):
                continue
            sent = self._sent.get(src.label)
            if sent is not None and sample.time <= sent:
                continue
            if (now - sample.time).total_seconds() > self.config.max_telemetry_age_s:
                continue
            value = -sample.value if src.negate else sample.value
            stamp = sample.time.isoformat()
            out.append({"asset_id": self.config.asset_id, "start_timestamp": stamp, "end_timestamp": stamp,
                        "value": value + 0.0, "label": src.label})
        return out

    async def upload(self) -> int:
        now = self.clock.now()
        readings = self.fresh_readings(now)
        if not readings:
            return 0
        try:
            response = await self._authorised(
                lambda h: self._client().post("/data/readings", json={"readings": readings}, headers=h))
            if response.status_code not in (200, 201, 204):
                raise AxleError(f"readings answered {response.status_code}")
        except (httpx.HTTPError, AxleError, ValueError) as exc:
            self.counts["upload_errors"] += 1
            log.warning("axle_upload_failed", error=repr(exc), readings=len(readings))
            return 0
        for r in readings:
            self._sent[r["label"]] = _ts(r["start_timestamp"])
        self.counts["readings_sent"] += len(readings)
        return len(readings)

    # --- the task ------------------------------------------------------------------------------------

    async def _every(self, interval_s: float, job: Callable[[], Any]) -> None:
        while True:
            try:
                await job()
            except (httpx.HTTPError, AxleError, ValueError) as exc:
                self.counts["errors"] += 1
                log.warning("axle_job_failed", error=repr(exc))
            await self.clock.sleep(interval_s)

    async def _refresh_token(self) -> None:
        if self._token_at is None or self.clock.monotonic() - self._token_at >= self.config.token_refresh_s:
            await self.login()

    async def run(self) -> None:
        c = self.config
        try:
            await asyncio.gather(self._every(c.token_refresh_s, self._refresh_token),
                                 self._every(c.schedule_poll_interval_s, self.fetch_schedule),
                                 self._every(c.telemetry_upload_interval_s, self.upload))
        finally:
            await asyncio.shield(self.close())

