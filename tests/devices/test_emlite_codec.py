"""EMOP codec: the worked examples of spec/devices.md byte for byte, round trips, corrupted bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.emlite.codec import (
    EPOCH_2000,
    ElementRegisters,
    Frame,
    FrameError,
    Nak,
    ObjectAnswer,
    ObjectId,
    ObjectReadRequest,
    Profile1Record,
    Profile2Record,
    ProfileLogAnswer,
    ProfileLogRequest,
    SignalQuality,
    crc16_ccitt_false,
    decode,
    decode_value,
    encode,
    encode_value,
    frame_size,
)

CLIENT = 0x21AE42


def test_worked_example_element_a_registers() -> None:
    raw = encode(Frame(ObjectReadRequest(ObjectId.ELEMENT_A_REGISTERS), src_address=CLIENT, sequence=1))
    assert raw == bytes.fromhex("7E 11 00 000000 00 21AE42 05 01 FFFFFC 00 7CA1")


def test_worked_example_voltage() -> None:
    raw = encode(Frame(ObjectReadRequest(ObjectId.VOLTAGE), src_address=CLIENT, sequence=1))
    assert raw == bytes.fromhex("7E 11 00 000000 00 21AE42 05 01 0C0700 00 646F")
    assert decode(raw) == Frame(ObjectReadRequest(0x0C0700), src_address=CLIENT, sequence=1)


def test_crc_is_ccitt_false() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def _crc_bit_by_bit(data: bytes) -> int:
    # The algorithm as the protocol description states it, one bit at a time.
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@given(st.binary(max_size=300))
def test_crc_matches_the_bitwise_definition(data: bytes) -> None:
    assert crc16_ccitt_false(data) == _crc_bit_by_bit(data)


def test_nak_frame_layout() -> None:
    raw = encode(Frame(Nak(5), dest_address=CLIENT, src_address=0x123456, sequence=1))
    assert raw[10] == 0x85 and raw[11] == 5 and raw[1] == 13
    assert decode(raw).message == Nak(5)


def test_profile_request_timestamp_is_big_endian() -> None:
    t = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    raw = encode(Frame(ProfileLogRequest(1, t)))
    seconds = int((t - EPOCH_2000).total_seconds())
    assert raw[11] == 0x03 and raw[12:16] == seconds.to_bytes(4, "big")


def test_profile_answer_padding_dropped_and_records_little_endian() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    rec = Profile1Record(t, 0x8000, 1234, 0)
    raw = encode(Frame(ProfileLogAnswer(1, t, (rec,))))
    assert len(raw) == 1 + 12 + 5 + 4 * 14
    seconds = int((t - EPOCH_2000).total_seconds())
    assert raw[16:20] == seconds.to_bytes(4, "little")
    assert raw[20:22] == (0x8000).to_bytes(2, "little")
    assert raw[22:26] == (1234).to_bytes(4, "little")
    assert decode(raw).message == ProfileLogAnswer(1, t, (rec,))


def test_object_values_are_little_endian() -> None:
    assert decode_value(ObjectId.PREPAY_BALANCE, (-250000).to_bytes(4, "little", signed=True)) == -250000
    assert decode_value(ObjectId.POWER_TOTAL, bytes([0x10, 0x27])) == 10000
    regs = decode_value(ObjectId.ELEMENT_A_REGISTERS, bytes.fromhex("01000000 02000000 03000000 04000000"))
    assert regs == ElementRegisters(1, 2, 3, 4)
    assert decode_value(ObjectId.SIGNAL_QUALITY, bytes([0b011_10111])) == SignalQuality(3, 23)
    assert decode_value(ObjectId.CLOCK, bytes([26, 3, 4, 5, 6, 7, 1])) == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize("object_id, payload", [
    (ObjectId.PREPAY_BALANCE, b"\x00\x01"),
    (ObjectId.CLOCK, bytes([26, 13, 40, 0, 0, 0, 1])),
    (0x123456, b"\x00"),
])
def test_bad_values_raise_frame_error(object_id: int, payload: bytes) -> None:
    with pytest.raises(FrameError):
        decode_value(object_id, payload)


def test_frame_size_from_prefix() -> None:
    raw = encode(Frame(ObjectReadRequest(ObjectId.CLOCK)))
    assert frame_size(raw[:1]) is None
    assert frame_size(raw[:2]) == len(raw)
    with pytest.raises(FrameError, match="delimiter"):
        frame_size(b"\x00\x11")


# --- properties ------------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u24 = st.integers(0, 2**24 - 1)
u8 = st.integers(0, 255)
# Non-zero timestamps: an all-zero record is padding by definition and never data.
times = st.integers(1, 2**32 - 1).map(lambda s: EPOCH_2000 + timedelta(seconds=s))
half_hours = st.integers(0, 2**32 // 1800 - 1).map(lambda n: EPOCH_2000 + timedelta(seconds=n * 1800))

profile1 = st.builds(Profile1Record, times, st.integers(0, 0xFFFF), u32, u32)
profile2_single = st.builds(Profile2Record, times, st.integers(0, 0xFFFF), u32, u32, u32, u32, st.none())
profile2_twin = st.builds(Profile2Record, times, st.integers(0, 0xFFFF), u32, u32, u32, u32, st.tuples(u32, u32, u32))

messages = st.one_of(
    st.builds(ObjectReadRequest, u24),
    st.builds(ObjectAnswer, u24, st.binary(min_size=1, max_size=200)),
    st.builds(ProfileLogRequest, st.sampled_from([1, 2]), half_hours),
    st.builds(lambda t, r: ProfileLogAnswer(1, t, tuple(r)), half_hours, st.lists(profile1, min_size=1, max_size=4)),
    st.builds(lambda t, r: ProfileLogAnswer(2, t, tuple(r)), half_hours,
              st.lists(profile2_single, min_size=1, max_size=3)),
    st.builds(lambda t, r: ProfileLogAnswer(2, t, tuple(r), twin_element=True), half_hours,
              st.lists(profile2_twin, min_size=1, max_size=2)),
    st.builds(Nak, u8),
)
frames = st.builds(Frame, messages, u8, u24, u8, u24, st.integers(0, 1))


@given(frames)
@settings(max_examples=300)
def test_decode_inverts_encode(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


@given(frames, st.data())
@settings(max_examples=300)
def test_any_corrupted_byte_is_rejected(frame: Frame, data: st.DataObject) -> None:
    raw = bytearray(encode(frame))
    i = data.draw(st.integers(0, len(raw) - 1), label="index")
    flip = data.draw(st.integers(1, 255), label="xor")
    raw[i] ^= flip
    with pytest.raises(FrameError) as err:
        decode(bytes(raw))
    assert err.value.reason in {"delimiter", "length", "truncated", "oversized", "crc"}


@given(frames, st.data())
def test_truncated_and_oversized_are_rejected(frame: Frame, data: st.DataObject) -> None:
    raw = encode(frame)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FrameError):
        decode(raw[:cut])
    with pytest.raises(FrameError, match="oversized"):
        decode(raw + data.draw(st.binary(min_size=1, max_size=5)))


values = st.one_of(
    st.tuples(st.sampled_from([ObjectId.ELEMENT_A_REGISTERS, ObjectId.ELEMENT_B_REGISTERS]),
              st.builds(ElementRegisters, u32, u32, u32, u32)),
    st.tuples(st.sampled_from([ObjectId.POWER_TOTAL, ObjectId.POWER_ELEMENT_A, ObjectId.POWER_ELEMENT_B,
                               ObjectId.VOLTAGE]), st.integers(0, 0xFFFF)),
    st.tuples(st.just(ObjectId.PREPAY_BALANCE), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(ObjectId.CLOCK), st.datetimes(datetime(2000, 1, 1), datetime(2255, 12, 31),
                                                    timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))),
    st.tuples(st.sampled_from([ObjectId.SERIAL, ObjectId.FIRMWARE_VERSION, ObjectId.HARDWARE_VERSION]),
              st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", min_size=1, max_size=20)),
    st.tuples(st.just(ObjectId.SIGNAL_QUALITY), st.builds(SignalQuality, st.integers(0, 7), st.integers(0, 31))),
    st.tuples(st.just(ObjectId.PREPAY_ENABLED), st.integers(0, 1)),
)


@given(values)
def test_object_values_round_trip(pair: tuple[int, object]) -> None:
    object_id, value = pair
    payload = encode_value(object_id, value)  # type: ignore[arg-type]
    assert decode_value(object_id, payload) == value
    frame = Frame(ObjectAnswer(object_id, payload), src_address=7)
    answer = decode(encode(frame)).message
    assert isinstance(answer, ObjectAnswer) and decode_value(answer.object_id, answer.payload) == value
