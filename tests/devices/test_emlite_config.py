"""Emlite entries of the site file: checks that need more than one field or more than one meter."""

from __future__ import annotations

import pytest

from controller.config import ConfigError
from devices.emlite.config import EmliteConfig
from tests.devices.sim_sites import emlite_device, site


def test_meters_on_one_link_must_agree_on_its_socket_limit() -> None:
    with pytest.raises(ConfigError) as err:
        site([emlite_device("a", link="r1", link_max_connections=8), emlite_device("b", link="r1"),
              emlite_device("c", link="r2", link_max_connections=4)])
    (problem,) = err.value.problems
    assert problem.path == "devices.1.link_max_connections"
    assert "link 'r1' already has link_max_connections 8 (device 'a')" in problem.message


def test_busy_backoff_range_must_be_ordered() -> None:
    with pytest.raises(ConfigError) as err:
        site([emlite_device("a", busy_backoff_s=[5, 2])])
    assert [p.path for p in err.value.problems] == ["devices.0.busy_backoff_s"]


def test_defaults_follow_the_polling_policy() -> None:
    plain = site([{k: v for k, v in emlite_device("b").items() if k != "port"}]).device("b")
    assert isinstance(plain, EmliteConfig)
    assert (plain.port, plain.timeout_s, plain.min_connection_gap_s, plain.busy_backoff_s) == (8080, 10.0, 2.0, (2.0, 5.0))
