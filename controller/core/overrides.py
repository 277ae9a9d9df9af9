"""Operator overrides taken over MQTT (or the admin endpoint) and applied by the control loop.

Every override still passes through the safety envelope; it changes what is proposed, never the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class Overrides:
    dry_run: bool | None = None  # None: as the site file says
    manual_setpoint_kw: float | None = None  # + discharge; replaces the modes' arbitration
    mode: str | None = None  # run only this mode type (or mode name)
    until: datetime | None = None  # setpoint and mode overrides lapse at this time
    source: str | None = None  # who set it (MQTT client, admin user), for the decision record

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def clear_timed(self) -> None:
        self.manual_setpoint_kw = None
        self.mode = None
        self.until = None
        self.source = None
