"""Piecewise-linear price -> SoE curves of NIV chase."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from modes.niv_chase import CurvePoint


def soe_at(curve: Sequence[CurvePoint], price: float) -> float | None:
    """The curve's SoE at `price` by linear interpolation; None outside the curve's price span."""
    if not curve or price < curve[0].price or price > curve[-1].price:
        return None
    for a, b in itertools.pairwise(curve):
        if a.price <= price <= b.price:
            return a.soe_kwh + (b.soe_kwh - a.soe_kwh) * (price - a.price) / (b.price - a.price)
    return curve[-1].soe_kwh
