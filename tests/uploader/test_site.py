"""The uploader's view of the site, as the application builds it from the site model."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import SiteConfig
from controller.config.views import uploader_site
from devices.catalog import CLOUD_ROUTING
from tests.uploader.fixtures import BESS_ID, EMLITE_ID, METER_ID, site
from uploader.config import BufferConfig, UploaderConfig
from uploader.site import UploadedDevice, UploaderSite, buffer_dir, device_entries
from uploader.tables import site_device_id


def test_view_of_a_site_with_a_controller(tmp_path: Path) -> None:
    doc = site(tmp_path).model_dump(mode="json")
    doc["devices"].append({"type": "emlite", "name": "home-1", "id": str(EMLITE_ID), "host": "127.0.0.1"})
    doc["controller"] = {"site_meter": "site-meter", "battery": "bess", "soe_min_kwh": 100, "soe_max_kwh": 900,
                         "battery_charge_limit_kw": 200, "battery_discharge_limit_kw": 200,
                         "site_import_limit_kw": 500, "site_export_limit_kw": 500}
    view = uploader_site(SiteConfig.model_validate(doc))
    assert view.site_id == "test" and view.battery_id == BESS_ID and view.routing == CLOUD_ROUTING
    assert view.devices == (UploadedDevice(BESS_ID, "bess", "powerpack", False),
                            UploadedDevice(METER_ID, "site-meter", "acuvim2", False),
                            UploadedDevice(EMLITE_ID, "home-1", "emlite", True))
    assert buffer_dir(view) == tmp_path / "test"
    entries = device_entries(view)
    assert [(e.name, e.type) for e in entries] == [("bess", "powerpack"), ("site-meter", "acuvim2"),
                                                   ("home-1", "emlite"), ("test", "site")]
    assert entries[-1].device_id == str(site_device_id("test"))


def test_no_controller_no_battery_for_decisions(tmp_path: Path) -> None:
    assert uploader_site(site(tmp_path)).battery_id is None


@pytest.mark.parametrize(("route", "error"), [
    (("mg_nowhere", {"x": "x"}), "not a reading table"),
    (("mg_controller_events", {"kind": "kind"}), "not a reading table"),
    (("mg_meter_readings", {"power": "power_total", "frequency": "frequency"}), r"lacks: \['power_total'\]"),
])
def test_a_route_to_a_table_or_column_the_schema_lacks_is_refused(route: tuple[str, dict[str, str]],
                                                                   error: str) -> None:
    with pytest.raises(ValueError, match=error):
        UploaderSite("s", BufferConfig(), UploaderConfig(), (), None, {"new_kind": route})
