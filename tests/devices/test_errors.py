"""Device errors read as words in `status`, not as Python reprs."""

from __future__ import annotations

import socket

import pytest

from devices.base import DeviceError
from devices.errors import describe
from devices.heat_mbus.gateway import MbusGateway
from tests.helpers import free_port


def test_words_for_common_failures() -> None:
    assert describe(TimeoutError()) == "timed out"
    assert describe(ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")) == "connection refused"
    assert describe(ConnectionResetError(104, "Connection reset by peer")) == "connection reset by the device"
    assert describe(ValueError("bad frame")) == "ValueError: bad frame"
    from pymodbus.exceptions import ModbusIOException

    assert describe(ModbusIOException("No response received after 0 retries")) == "no response from the device"


def test_a_real_refused_connection() -> None:
    with pytest.raises(OSError) as err:
        socket.create_connection(("127.0.0.1", free_port()), timeout=2)
    assert describe(err.value) == "connection refused"


async def test_a_gateway_that_does_not_listen_fails_in_words() -> None:
    gateway = MbusGateway("127.0.0.1", free_port())
    with pytest.raises(DeviceError) as err:
        await gateway._ensure(2.0)
    assert str(err.value).endswith(": connect failed: connection refused")
    assert "Error(" not in str(err.value)  # no repr
