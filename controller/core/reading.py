"""A reading: one poll of one device, the unit of data everywhere (bus, state store, outbox, cloud)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

FieldValue = float | int | str | None


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll of one device: values of named fields at the start of the poll slot (UTC).

    `time` is the slot the poll belongs to, never the moment the answer came back; together with
    `device_id` it is the natural key of a reading everywhere (outbox, cloud, gap detection).
    """

    device_id: UUID
    device: str
    kind: str
    time: datetime
    fields: Mapping[str, FieldValue]
    # When the answer arrived (UTC); used for data age, never as the key.
    received_at: datetime | None = None

    def number(self, name: str) -> float | None:
        v = self.fields.get(name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        return float(v) if math.isfinite(v) else None
