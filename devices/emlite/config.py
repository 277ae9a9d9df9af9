"""Emlite prepayment meters over EMOP/TCP (our own codec, written from the protocol description)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from controller.core.config import ProblemList
from controller.core.schema import Field
from devices.config import DeviceConfigBase


class EmliteConfig(DeviceConfigBase):
    type: Literal["emlite"]
    port: int = Field(default=8080, ge=1, le=65535)
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="connect and read, per request")
    serial: str | None = Field(default=None, description="meter serial, checked against the meter when set")
    twin_element: bool = Field(default=False, description="meter has elements A and B")
    link: str | None = Field(
        default=None, description="name of the shared uplink (4G router); defaults to the host")
    link_max_connections: int = Field(
        default=16, ge=1, le=256,
        description="open sockets at once over this meter's link, shared by every meter on it (first meter's value)")
    min_connection_gap_s: float = Field(
        default=2.0, ge=0, description="meters refuse a connection that follows the previous one too soon")
    busy_backoff_s: tuple[float, float] = Field(
        default=(2.0, 5.0), description="wait (random in this range) after a busy meter refused, before the one retry")
    extras_interval_s: float = Field(
        default=900.0, gt=0, description="how often voltage and signal quality are read (a few times an hour)")
    clock_check_interval_s: float = Field(default=3600.0, gt=0, description="meter clock read, drift recorded")
    clock_drift_alert_s: float = Field(default=300.0, gt=0, description="drift beyond this is logged and counted")
    voltage_scale: float = Field(
        default=0.1, gt=0, description="volts per raw unit of the voltage object (unconfirmed by the vendor)")
    down_poll_interval_s: float = Field(
        default=600.0, gt=0, description="a meter that keeps failing is polled at most this rarely")
    start_jitter_s: float = Field(
        default=2.0, ge=0, description="random delay before a poll, so a site's meters do not connect all at once")
    client_address: int = Field(default=0x000001, ge=0, le=0xFFFFFF, description="our own EMOP source address")

    def problems(self) -> ProblemList:
        yield from super().problems()
        low, high = self.busy_backoff_s
        if not 0 <= low <= high:
            yield ("busy_backoff_s",), "must be [low, high] with 0 <= low <= high"

    def endpoint(self) -> tuple[str, int, int] | None:
        # A site's meters sit behind one 4G router: they share its address and are told apart by EMOP address.
        return None

    def problems_among(self, earlier: Sequence[DeviceConfigBase]) -> ProblemList:
        # One router has one socket limit: meters sharing a link must agree on it.
        link = self.link or self.host
        for other in earlier:
            if isinstance(other, EmliteConfig) and (other.link or other.host) == link \
                    and other.link_max_connections != self.link_max_connections:
                yield ("link_max_connections",), (
                    f"link '{link}' already has link_max_connections {other.link_max_connections} "
                    f"(device '{other.name}')")
                break
