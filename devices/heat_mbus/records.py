"""RSP_UD decoding for heat meters: pymeterbus parses the frame and scales the values, we pick the
records that matter by their VIF (EN 13757-3, spec/devices.md) and convert to our units.

pymeterbus is imported on the first decode, not with this module: the frame constants are used by
every site's device links, and pymeterbus (with the pycryptodome and simplejson it pulls in, about
1.5 MiB) should be paid for only on a site that has an M-Bus meter. It calls logging.basicConfig()
on import, which would put a stderr handler on the root logger and change its level under
structlog: `_meterbus` is the one place that imports it and puts the root logger back as it was.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from controller.core.reading import FieldValue


@functools.cache
def _meterbus() -> Any:  # pymeterbus has no type hints
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import meterbus

    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    return meterbus

ACK = 0xE5
LONG_START = 0x68
SHORT_START = 0x10
STOP = 0x16
CI_RSP_UD_VARIABLE = 0x72

SND_NKE = 0x40
REQ_UD2 = 0x5B
FCB = 0x20


class MbusDecodeError(ValueError):
    """A frame pymeterbus cannot parse, or one that is not a variable-data RSP_UD."""


def short_frame(control: int, address: int) -> bytes:
    return bytes([SHORT_START, control, address, (control + address) & 0xFF, STOP])


def long_frame_size(prefix: bytes) -> int | None:
    """Total bytes of the long frame `prefix` starts (L + 6), None until the header is in."""
    if len(prefix) < 4:
        return None
    if prefix[1] != prefix[2] or prefix[3] != LONG_START:
        raise MbusDecodeError(f"bad long-frame header {prefix[:4].hex()}")
    return prefix[1] + 6


@dataclass(frozen=True)
class HeatRecords:
    address: int
    identification: str
    manufacturer: str
    fields: dict[str, FieldValue] = field(default_factory=dict)
    skipped: int = 0  # records not used: other storage numbers, tariffs, max/min values, unknown VIFs


# Primary VIF (extension bit cleared) ranges -> (field, factor to our unit from pymeterbus's scaled value, digits).
def _classify(vif: int) -> tuple[str, Decimal, int] | None:
    if 0x00 <= vif <= 0x07:
        return "energy_kwh", Decimal("0.001"), 3  # Wh -> kWh
    if 0x08 <= vif <= 0x0F:
        return "energy_kwh", Decimal(1) / Decimal(3_600_000), 3  # J -> kWh
    if 0x10 <= vif <= 0x17:
        return "volume_m3", Decimal(1), 6
    if 0x28 <= vif <= 0x2F:
        return "power_kw", Decimal("0.001"), 4  # W -> kW
    if 0x38 <= vif <= 0x3F:
        return "flow_m3h", Decimal(1), 6
    if 0x58 <= vif <= 0x5B:
        return "flow_temperature_c", Decimal(1), 3
    if 0x5C <= vif <= 0x5F:
        return "return_temperature_c", Decimal(1), 3
    if 0x60 <= vif <= 0x63:
        return "temperature_difference_k", Decimal(1), 3
    return None


def decode_rsp_ud(raw: bytes) -> HeatRecords:
    try:
        telegram: Any = _meterbus().load(list(raw))
    except Exception as exc:  # pymeterbus raises assorted exception types for damaged frames
        raise MbusDecodeError(f"undecodable frame: {exc!r}") from exc
    if not isinstance(telegram, _meterbus().TelegramLong) or raw[6] != CI_RSP_UD_VARIABLE:
        raise MbusDecodeError(f"not a variable-data RSP_UD: {raw[:8].hex()}")
    header = telegram.body.bodyHeader
    fields: dict[str, FieldValue] = {}
    skipped = 0
    for rec in telegram.records:
        try:
            storage, tariff, _subunit = rec.dib.parse_dife()
            instantaneous = (rec.dib.parts[0] & 0x30) == 0
            vib = list(rec.vib.parts)
            value = rec.parsed_value
        except Exception:  # one odd record must not cost the others
            skipped += 1
            continue
        if storage or tariff or not instantaneous or not vib or value is None:
            skipped += 1  # billing-date values, tariff registers, max/min: not the minute's reading
            continue
        if vib[0] == 0xFD and len(vib) > 1 and vib[1] & 0x7F == 0x17:
            name, factor, digits = "error_flags", Decimal(1), 0
        else:
            spec = None if vib[0] in (0x7C, 0xFC, 0xFB, 0xFD, 0xFF, 0x7F) else _classify(vib[0] & 0x7F)
            if spec is None:
                skipped += 1
                continue
            name, factor, digits = spec
        if name in fields or isinstance(value, str):
            skipped += 1
            continue
        # pymeterbus builds its Decimals from floats (4567.89000000000032...): round to the unit's resolution.
        scaled = Decimal(value) * factor
        fields[name] = int(scaled) if digits == 0 else float(round(scaled, digits))
    ident = "".join(f"{b:02X}" for b in reversed(bytes(header.id_nr_field.parts)))
    return HeatRecords(raw[5], ident, str(telegram.manufacturer), fields, skipped)
