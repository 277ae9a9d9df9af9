"""The device catalog: every kind declared once, and what the rest of the daemon derives from the declarations."""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.config import SiteConfig, load_site
from controller.core.clock import ManualClock
from devices.base import Device, HasProfileLog
from devices.catalog import BATTERY_KINDS, BY_NAME, CLOUD_ROUTING, KINDS, MEASUREMENT_IDS, METER_KINDS, create_device
from devices.config import DeviceConfigBase
from devices.emlite.driver import EmliteMeter
from devices.heat_mbus.driver import HeatMbusMeter
from devices.kind import DeviceKind, Role
from devices.links import DeviceLinks
from uploader.tables import READING_TABLES

ROOT = Path(__file__).resolve().parents[2]
CLOCK = ManualClock(datetime(2026, 6, 1, tzinfo=UTC))


def _site(*devices: dict[str, object]) -> SiteConfig:
    return SiteConfig.model_validate({"site": {"id": "t", "name": "t"}, "devices": list(devices)})


def _device(kind: str, name: str, **extra: object) -> dict[str, object]:
    return {"type": kind, "name": name, "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "host": "127.0.0.1",
            "port": 15000 + len(name), **extra}


def test_every_kind_once_and_the_site_file_union_lists_them_in_catalog_order() -> None:
    assert [k.name for k in KINDS] == ["powerpack", "acuvim2", "emlite", "heat_mbus", "heat_modbus"]
    assert set(BY_NAME) == {k.name for k in KINDS} and len(BY_NAME) == len(KINDS)
    union = SiteConfig.model_fields["devices"].annotation
    (member,) = typing.get_args(union)  # list[Annotated[A | B | ..., discriminator]]
    assert typing.get_args(typing.get_args(member)[0]) == tuple(k.config for k in KINDS)


def test_roles_decide_what_the_controller_may_use() -> None:
    assert sorted(METER_KINDS) == ["acuvim2"] and sorted(BATTERY_KINDS) == ["powerpack"]
    assert all(k.role in Role for k in KINDS)


def test_a_kind_name_comes_from_its_config_literal() -> None:
    class Untyped(DeviceConfigBase):
        pass

    with pytest.raises(TypeError, match="Literal of one name"):
        DeviceKind(Untyped, lambda c, clock, links: typing.cast(Device, None), Role.OTHER, None, {})


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_each_route_fills_every_column_of_a_reading_table_once(kind: DeviceKind[typing.Any]) -> None:
    # The kinds name the uploader's columns themselves: this keeps the two lists from drifting apart.
    assert kind.cloud is not None and CLOUD_ROUTING[kind.name] is kind.cloud
    tables = {t.name: t for t in READING_TABLES}
    table = tables[kind.cloud.table]
    columns = list(kind.cloud.columns.values())
    assert sorted(columns) == sorted(table.column_names) and len(set(columns)) == len(columns)


def test_measurement_ids_are_the_kinds_own() -> None:
    assert set(MEASUREMENT_IDS) == set(BY_NAME)
    assert MEASUREMENT_IDS["heat_mbus"] == MEASUREMENT_IDS["heat_modbus"]  # one table for both heat kinds


def test_only_emlite_keeps_a_profile_log_and_its_driver_can_read_it() -> None:
    assert [k.name for k in KINDS if k.profile_log] == ["emlite"]
    site = _site(_device("emlite", "home"))
    assert isinstance(create_device(site.devices[0], CLOCK, DeviceLinks()), HasProfileLog)


def test_every_kind_in_the_demo_site_gets_its_driver() -> None:
    config = load_site(ROOT / "config" / "sites" / "demo.yaml").config
    links = DeviceLinks()
    for d in config.devices:
        device = create_device(d, CLOCK, links)
        assert isinstance(device, Device) and device.config is d


def test_meters_on_one_link_share_its_limit_and_meters_on_one_gateway_its_connection() -> None:
    site = _site(_device("emlite", "a", link="router", link_max_connections=3),
                 _device("emlite", "b", link="router", link_max_connections=3),
                 _device("emlite", "c", host="127.0.0.2"),
                 _device("heat_mbus", "h1", port=10001, mbus_address=1),
                 _device("heat_mbus", "h2", port=10001, mbus_address=2),
                 _device("heat_mbus", "h3", port=10002, mbus_address=1))
    links = DeviceLinks()
    a, b, c, h1, h2, h3 = (create_device(d, CLOCK, links) for d in site.devices)
    assert isinstance(a, EmliteMeter) and isinstance(b, EmliteMeter) and isinstance(c, EmliteMeter)
    assert a.client.link is b.client.link is links.emop_links["router"] and c.client.link is not a.client.link
    assert isinstance(h1, HeatMbusMeter) and isinstance(h2, HeatMbusMeter) and isinstance(h3, HeatMbusMeter)
    assert h1.gateway is h2.gateway is links.mbus_gateways[("127.0.0.1", 10001)] and h3.gateway is not h1.gateway
    again = create_device(site.devices[0], CLOCK, links)  # a driver recreated on reload keeps the link's limiter
    assert isinstance(again, EmliteMeter) and again.client.link is a.client.link
    other = create_device(site.devices[0], CLOCK, DeviceLinks())
    assert isinstance(other, EmliteMeter) and other.client.link is not a.client.link


def test_an_unknown_kind_has_no_driver() -> None:
    config = DeviceConfigBase(type="nope", name="x", id=uuid.uuid4(), host="h", port=1)
    with pytest.raises(ValueError, match="no driver for device kind 'nope'"):
        create_device(config, CLOCK, DeviceLinks())
