"""EMOP ("EM-Lite Object Protocol") frames and messages, written from the protocol description in
spec/devices.md. Pure and synchronous: bytes in, typed messages out, and back.

Frame: 7E | length | dest type, dest addr(3) | src type, src addr(3) | control | data | CRC-16 (BE).
`length` counts every byte after the delimiter, CRC included (12 + data length). The CRC is
CRC-16/CCITT-FALSE over bytes 1 .. 10+n.

Choices where the description leaves things open (the simulator in simulator/emlite.py follows them):
- A NAK answer has bit 7 of the control byte set, echoes the request's sequence bit, and carries the
  NAK code as its one data byte.
- An object read request and its answer share format 0x01; a request has an empty payload, an answer
  never does, so the data field alone tells them apart. Likewise a profile-log request carries only
  the timestamp and an answer carries the timestamp plus records.
- Read/write flag: only 0x00 (read) is produced or accepted; we never write to a billing meter.
- Clock day of week is ignored on decode (its numbering is unconfirmed); we encode ISO 1..7.
- Profile log 2 record size follows the answer's length: 3 x 22 bytes (single element) or 2 x 34
  bytes (twin element). Encoding pads an answer with all-zero records to that full count.
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devices.base import DeviceError

DELIMITER = 0x7E
HEADER_BYTES = 11  # delimiter, length, dest(4), src(4), control
OVERHEAD = 12  # length byte counts: dest(4) + src(4) + control + CRC(2) + the length byte itself
MAX_FRAME_BYTES = 1 + 255  # the length byte caps a frame
MAX_DATA_BYTES = 255 - OVERHEAD

CONTROL_REQUEST = 0x05
SEQUENCE_BIT = 0x01
NAK_BIT = 0x80

EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)

FORMAT_OBJECT = 0x01
FORMAT_PROFILE_1 = 0x03
FORMAT_PROFILE_2 = 0x04
FLAG_READ = 0x00


class NakCode(enum.IntEnum):
    FCS_ERROR = 1
    FORMAT_ERROR = 2
    FRAME_LENGTH_INCORRECT = 3
    MAX_PAYLOAD_EXCEEDED = 4
    UNKNOWN_OBJECT = 5
    SECURITY_NOT_GRANTED = 6
    FRAME_ADDRESS_INCORRECT = 7


class ObjectId(enum.IntEnum):
    ELEMENT_A_REGISTERS = 0xFFFFFC
    ELEMENT_B_REGISTERS = 0xFFFFF8
    POWER_TOTAL = 0x010700
    POWER_ELEMENT_A = 0x150700
    POWER_ELEMENT_B = 0x290700
    PREPAY_BALANCE = 0xFFC802
    VOLTAGE = 0x0C0700
    CLOCK = 0x800800
    SERIAL = 0x600100
    HARDWARE_VERSION = 0x608000
    FIRMWARE_VERSION = 0x000201
    SIGNAL_QUALITY = 0xFFFD1D
    PREPAY_ENABLED = 0xFFFF0D


class EmopError(DeviceError):
    """Anything wrong with an EMOP exchange."""


class FrameError(EmopError):
    """Bytes that are not a valid EMOP frame or message. `reason` names what is wrong, for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class NakError(EmopError):
    def __init__(self, code: int) -> None:
        try:
            name = NakCode(code).name.lower()
        except ValueError:
            name = "unknown"
        super().__init__(f"nak {code} ({name})")
        self.code = code


# --- CRC -------------------------------------------------------------------------------------------

def crc16_ccitt_false(data: bytes) -> int:
    # CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) is the CRC-CCITT that
    # binascii computes in C: a frame's check costs a few hundredths of a pure-Python table loop.
    return binascii.crc_hqx(data, 0xFFFF)


# --- messages --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ObjectReadRequest:
    object_id: int


@dataclass(frozen=True, slots=True)
class ObjectAnswer:
    object_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ProfileLogRequest:
    log: int  # 1 or 2
    timestamp: datetime  # UTC, on a half-hour boundary


@dataclass(frozen=True, slots=True)
class Profile1Record:
    timestamp: datetime
    status: int
    import_a_wh: int
    import_b_wh: int


@dataclass(frozen=True, slots=True)
class Profile2Record:
    timestamp: datetime
    status: int
    export_a_wh: int
    reactive_import_a_varh: int
    reactive_export_a_varh: int
    voltage: int
    # Twin-element meters only: (export Wh, reactive import varh, reactive export varh) of element B.
    element_b: tuple[int, int, int] | None = None


ProfileRecord = Profile1Record | Profile2Record


@dataclass(frozen=True, slots=True)
class ProfileLogAnswer:
    log: int
    timestamp: datetime
    records: tuple[ProfileRecord, ...]
    # Profile log 2 only: which record layout the answer uses (the length says it on the wire).
    twin_element: bool = False


@dataclass(frozen=True, slots=True)
class Nak:
    code: int


Message = ObjectReadRequest | ObjectAnswer | ProfileLogRequest | ProfileLogAnswer | Nak


@dataclass(frozen=True, slots=True)
class Frame:
    message: Message
    dest_type: int = 0
    dest_address: int = 0
    src_type: int = 0
    src_address: int = 0
    sequence: int = 1

    @property
    def control(self) -> int:
        if isinstance(self.message, Nak):
            return NAK_BIT | (CONTROL_REQUEST & ~SEQUENCE_BIT) | self.sequence
        return (CONTROL_REQUEST & ~SEQUENCE_BIT) | self.sequence


# Records per answer and bytes per record.
PROFILE1_RECORDS, PROFILE1_RECORD_BYTES = 4, 14
PROFILE2_SINGLE_RECORDS, PROFILE2_SINGLE_BYTES = 3, 22
PROFILE2_TWIN_RECORDS, PROFILE2_TWIN_BYTES = 2, 34

STATUS_VALID = 1 << 15
STATUS_POWER_FAIL = 1 << 14
STATUS_MINOR_TIME_ERROR = 1 << 13
STATUS_MAJOR_TIME_ERROR = 1 << 12
STATUS_COMMS_ERROR = 1 << 11
STATUS_RESET = 1 << 0


def to_emop_seconds(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("naive datetime")
    seconds = (t - EPOCH_2000).total_seconds()
    if seconds < 0 or seconds > 0xFFFFFFFF or seconds != int(seconds):
        raise ValueError(f"{t.isoformat()} is not a whole second in the EMOP time range")
    return int(seconds)


def from_emop_seconds(seconds: int) -> datetime:
    return EPOCH_2000 + timedelta(seconds=seconds)


def _encode_record(record: ProfileRecord, twin: bool) -> bytes:
    head = struct.pack("<IH", to_emop_seconds(record.timestamp), record.status)
    if isinstance(record, Profile1Record):
        return head + struct.pack("<II", record.import_a_wh, record.import_b_wh)
    body = head + struct.pack("<IIII", record.export_a_wh, record.reactive_import_a_varh,
                              record.reactive_export_a_varh, record.voltage)
    if twin:
        if record.element_b is None:
            raise ValueError("twin-element profile log 2 record needs element_b")
        body += struct.pack("<III", *record.element_b)
    elif record.element_b is not None:
        raise ValueError("single-element profile log 2 record cannot carry element_b")
    return body


def _encode_data(message: Message) -> bytes:
    if isinstance(message, ObjectReadRequest):
        return bytes([FORMAT_OBJECT]) + message.object_id.to_bytes(3, "big") + bytes([FLAG_READ])
    if isinstance(message, ObjectAnswer):
        if not message.payload:
            raise ValueError("an object answer carries a value")
        return bytes([FORMAT_OBJECT]) + message.object_id.to_bytes(3, "big") + bytes([FLAG_READ]) + message.payload
    if isinstance(message, ProfileLogRequest):
        return bytes([_profile_format(message.log)]) + to_emop_seconds(message.timestamp).to_bytes(4, "big")
    if isinstance(message, ProfileLogAnswer):
        count, size = _profile_layout(message.log, message.twin_element)
        if len(message.records) > count:
            raise ValueError(f"profile log {message.log} answers hold at most {count} records")
        body = b"".join(_encode_record(r, message.twin_element) for r in message.records)
        body += bytes(size * (count - len(message.records)))
        return bytes([_profile_format(message.log)]) + to_emop_seconds(message.timestamp).to_bytes(4, "big") + body
    return bytes([message.code])


def _profile_format(log: int) -> int:
    if log == 1:
        return FORMAT_PROFILE_1
    if log == 2:
        return FORMAT_PROFILE_2
    raise ValueError(f"no profile log {log}")


def _profile_layout(log: int, twin: bool) -> tuple[int, int]:
    if log == 1:
        return PROFILE1_RECORDS, PROFILE1_RECORD_BYTES
    if twin:
        return PROFILE2_TWIN_RECORDS, PROFILE2_TWIN_BYTES
    return PROFILE2_SINGLE_RECORDS, PROFILE2_SINGLE_BYTES


def encode(frame: Frame) -> bytes:
    data = _encode_data(frame.message)
    if len(data) > MAX_DATA_BYTES:
        raise ValueError(f"data field of {len(data)} bytes exceeds {MAX_DATA_BYTES}")
    body = (
        bytes([OVERHEAD + len(data), frame.dest_type]) + frame.dest_address.to_bytes(3, "big")
        + bytes([frame.src_type]) + frame.src_address.to_bytes(3, "big") + bytes([frame.control]) + data
    )
    return bytes([DELIMITER]) + body + crc16_ccitt_false(body).to_bytes(2, "big")


def frame_size(prefix: bytes) -> int | None:
    """Total bytes of the frame that starts with `prefix` (`length + 1`), or None until the length byte is in."""
    if not prefix:
        return None
    if prefix[0] != DELIMITER:
        raise FrameError("delimiter", f"first byte 0x{prefix[0]:02X}, expected 0x7E")
    if len(prefix) < 2:
        return None
    if prefix[1] < OVERHEAD:
        raise FrameError("length", f"length byte {prefix[1]} below the minimum {OVERHEAD}")
    return prefix[1] + 1


def decode(raw: bytes) -> Frame:
    """One whole frame; anything else (short, long, corrupted, unknown shape) raises FrameError."""
    if len(raw) < OVERHEAD + 1:
        raise FrameError("truncated", f"{len(raw)} bytes, a frame has at least {OVERHEAD + 1}")
    size = frame_size(raw)
    assert size is not None
    if len(raw) < size:
        raise FrameError("truncated", f"{len(raw)} bytes, length byte says {size}")
    if len(raw) > size:
        raise FrameError("oversized", f"{len(raw)} bytes, length byte says {size}")
    crc = crc16_ccitt_false(raw[1:-2])
    got = int.from_bytes(raw[-2:], "big")
    if crc != got:
        raise FrameError("crc", f"CRC 0x{got:04X}, computed 0x{crc:04X}")
    control = raw[10]
    if control & ~(NAK_BIT | SEQUENCE_BIT) != CONTROL_REQUEST & ~SEQUENCE_BIT:
        raise FrameError("control", f"control byte 0x{control:02X}")
    data = raw[11:-2]
    message = _decode_nak(data) if control & NAK_BIT else _decode_data(data)
    return Frame(
        message=message,
        dest_type=raw[2], dest_address=int.from_bytes(raw[3:6], "big"),
        src_type=raw[6], src_address=int.from_bytes(raw[7:10], "big"),
        sequence=control & SEQUENCE_BIT,
    )


def _decode_nak(data: bytes) -> Nak:
    if len(data) != 1:
        raise FrameError("format", f"NAK with {len(data)} data bytes, expected 1")
    return Nak(data[0])


def _decode_data(data: bytes) -> Message:
    if not data:
        raise FrameError("format", "empty data field")
    fmt = data[0]
    if fmt == FORMAT_OBJECT:
        if len(data) < 5:
            raise FrameError("format", f"object message of {len(data)} bytes, needs at least 5")
        object_id = int.from_bytes(data[1:4], "big")
        if data[4] != FLAG_READ:
            raise FrameError("format", f"read/write flag 0x{data[4]:02X}, only reads are supported")
        payload = bytes(data[5:])
        return ObjectAnswer(object_id, payload) if payload else ObjectReadRequest(object_id)
    if fmt in (FORMAT_PROFILE_1, FORMAT_PROFILE_2):
        log = 1 if fmt == FORMAT_PROFILE_1 else 2
        if len(data) < 5:
            raise FrameError("format", f"profile log message of {len(data)} bytes, needs at least 5")
        timestamp = from_emop_seconds(int.from_bytes(data[1:5], "big"))
        body = bytes(data[5:])
        if not body:
            return ProfileLogRequest(log, timestamp)
        return _decode_profile_answer(log, timestamp, body)
    raise FrameError("format", f"unknown format byte 0x{fmt:02X}")


def _decode_profile_answer(log: int, timestamp: datetime, body: bytes) -> ProfileLogAnswer:
    if log == 1:
        twin = False
    elif len(body) == PROFILE2_TWIN_RECORDS * PROFILE2_TWIN_BYTES:
        twin = True
    else:
        twin = False
    count, size = _profile_layout(log, twin)
    if len(body) != count * size:
        raise FrameError("format", f"profile log {log} answer with {len(body)} record bytes, expected {count * size}")
    records: list[ProfileRecord] = []
    for i in range(count):
        chunk = body[i * size:(i + 1) * size]
        if not any(chunk):
            continue  # zero padding, not data
        ts, status = struct.unpack_from("<IH", chunk)
        if log == 1:
            a, b = struct.unpack_from("<II", chunk, 6)
            records.append(Profile1Record(from_emop_seconds(ts), status, a, b))
        else:
            exp, rimp, rexp, volt = struct.unpack_from("<IIII", chunk, 6)
            element_b: tuple[int, int, int] | None = None
            if twin:
                b_exp, b_rimp, b_rexp = struct.unpack_from("<III", chunk, 22)
                element_b = (b_exp, b_rimp, b_rexp)
            records.append(Profile2Record(from_emop_seconds(ts), status, exp, rimp, rexp, volt, element_b))
    return ProfileLogAnswer(log, timestamp, tuple(records), twin)


# --- object values ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ElementRegisters:
    import_wh: int
    export_wh: int
    reactive_import_varh: int
    reactive_export_varh: int


@dataclass(frozen=True, slots=True)
class SignalQuality:
    operator: int  # high 3 bits
    csq: int  # low 5 bits


ObjectValue = ElementRegisters | SignalQuality | datetime | int | str

_U16_OBJECTS = frozenset({ObjectId.POWER_TOTAL, ObjectId.POWER_ELEMENT_A, ObjectId.POWER_ELEMENT_B, ObjectId.VOLTAGE})
_ASCII_OBJECTS = frozenset({ObjectId.SERIAL, ObjectId.HARDWARE_VERSION, ObjectId.FIRMWARE_VERSION})


def _expect(object_id: int, payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise FrameError("value", f"object 0x{object_id:06X}: {len(payload)} value bytes, expected {size}")


def decode_value(object_id: int, payload: bytes) -> ObjectValue:
    """The typed value of an object answer (little-endian per the object table)."""
    if object_id in (ObjectId.ELEMENT_A_REGISTERS, ObjectId.ELEMENT_B_REGISTERS):
        _expect(object_id, payload, 16)
        return ElementRegisters(*struct.unpack("<IIII", payload))
    if object_id in _U16_OBJECTS:
        _expect(object_id, payload, 2)
        return int(struct.unpack("<H", payload)[0])
    if object_id == ObjectId.PREPAY_BALANCE:
        _expect(object_id, payload, 4)
        return int(struct.unpack("<i", payload)[0])
    if object_id == ObjectId.CLOCK:
        _expect(object_id, payload, 7)
        year, month, day, hour, minute, second, _dow = payload
        try:
            return datetime(2000 + year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as exc:
            raise FrameError("value", f"clock {payload.hex()}: {exc}") from exc
    if object_id == ObjectId.SIGNAL_QUALITY:
        _expect(object_id, payload, 1)
        return SignalQuality(payload[0] >> 5, payload[0] & 0x1F)
    if object_id == ObjectId.PREPAY_ENABLED:
        _expect(object_id, payload, 1)
        return payload[0]
    if object_id in _ASCII_OBJECTS:
        try:
            return payload.rstrip(b"\x00").decode("ascii")
        except UnicodeDecodeError as exc:
            raise FrameError("value", f"object 0x{object_id:06X}: not ASCII") from exc
    raise FrameError("object", f"no decoder for object 0x{object_id:06X}")


def encode_value(object_id: int, value: ObjectValue) -> bytes:
    """The answer payload of an object (the simulator's side of decode_value)."""
    if object_id in (ObjectId.ELEMENT_A_REGISTERS, ObjectId.ELEMENT_B_REGISTERS):
        assert isinstance(value, ElementRegisters)
        return struct.pack("<IIII", value.import_wh, value.export_wh, value.reactive_import_varh,
                           value.reactive_export_varh)
    if object_id in _U16_OBJECTS:
        assert isinstance(value, int)
        return struct.pack("<H", value)
    if object_id == ObjectId.PREPAY_BALANCE:
        assert isinstance(value, int)
        return struct.pack("<i", value)
    if object_id == ObjectId.CLOCK:
        assert isinstance(value, datetime)
        v = value.astimezone(UTC)
        return bytes([v.year - 2000, v.month, v.day, v.hour, v.minute, v.second, v.isoweekday()])
    if object_id == ObjectId.SIGNAL_QUALITY:
        assert isinstance(value, SignalQuality)
        return bytes([(value.operator & 0x07) << 5 | (value.csq & 0x1F)])
    if object_id == ObjectId.PREPAY_ENABLED:
        assert isinstance(value, int)
        return bytes([value])
    if object_id in _ASCII_OBJECTS:
        assert isinstance(value, str)
        return value.encode("ascii")
    raise ValueError(f"no encoder for object 0x{object_id:06X}")
