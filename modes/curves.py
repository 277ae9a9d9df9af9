"""Piecewise-linear price -> SoE curves of NIV chase: the site file's curve points, their checks, interpolation."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from controller.core.config import ConfigModel
from controller.core.schema import Field


class CurvePoint(ConfigModel):
    price: float = Field(description="p/kWh")
    soe_kwh: float = Field(ge=0)


def check_curve(points: list[CurvePoint]) -> list[CurvePoint]:
    """A curve field's validator: at least two points, prices strictly increasing."""
    if len(points) < 2:
        raise ValueError("a curve needs at least two points")
    for a, b in itertools.pairwise(points):
        if b.price <= a.price:
            raise ValueError("curve prices must strictly increase from one point to the next")
    return points


def soe_at(curve: Sequence[CurvePoint], price: float) -> float | None:
    """The curve's SoE at `price` by linear interpolation; None outside the curve's price span."""
    if not curve or price < curve[0].price or price > curve[-1].price:
        return None
    for a, b in itertools.pairwise(curve):
        if a.price <= price <= b.price:
            return a.soe_kwh + (b.soe_kwh - a.soe_kwh) * (price - a.price) / (b.price - a.price)
    return curve[-1].soe_kwh
