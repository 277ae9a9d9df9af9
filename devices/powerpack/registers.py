"""Tesla PowerPack Modbus register map (zero-based protocol addresses, see spec devices.md)."""

from __future__ import annotations

STATUS_START = 200
STATUS_COUNT = 34
COMMAND_SOURCE = 200  # uint16
TARGET_POWER_W = 201  # int32, W, + = discharge
NOMINAL_ENERGY_WH = 207  # int32, Wh: the state of energy
AVAILABLE_BLOCKS = 218  # uint16

CONFIG_START = 100
CONFIG_COUNT = 47
PROTOCOL_VERSION = 100  # int16
FIRMWARE_VERSION = 102  # string, 16 registers
SERIAL_NUMBER = 118  # string, 16 registers
STRING_REGISTERS = 16
BATTERY_METERS = 134  # int16
SITE_METERS = 135  # int16
MAX_CHARGE_POWER_W = 139  # int32
MAX_DISCHARGE_POWER_W = 141  # int32
ENERGY_WH = 145  # int32

REAL_POWER_MODE = 1000  # uint16, 1 = direct real power command
ALWAYS_ACTIVE = 1001  # uint16, 1 = never enter power saving
REAL_POWER_W = 1020  # int32, W, + = discharge
HEARTBEAT = 1022  # uint16, alternating HEARTBEAT_VALUES
COMMAND_TIMEOUT_S = 1023  # uint16, seconds
RAMP_UP_W_PER_S = 1024  # int32
RAMP_DOWN_W_PER_S = 1026  # int32
WRITE_START = 1000
WRITE_COUNT = 28

HEARTBEAT_VALUES = (0xAA55, 0x55AA)
DIRECT_REAL_POWER = 1
