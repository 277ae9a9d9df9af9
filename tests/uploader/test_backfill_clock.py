"""`flux-edge backfill` runs on the injected clock (FLUX_CLOCK), as the daemon and the simulator do (issue 15,
item 5): a `--since` in the simulated past is accepted even when it is in the real future."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from controller.cli import main as cli
from tests.helpers import free_port
from tests.ops.conftest import write_site


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_backfill_takes_now_from_flux_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    site = write_site(tmp_path / "site.yaml", bess_port=free_port(), meter_port=free_port(),
                      buffer={"path": str(tmp_path / "state")})
    monkeypatch.setenv("FLUX_CLOCK", "start=2031-01-01T00:00:00+00:00,speed=1")
    assert cli(["backfill", "--site", str(site), "--since", "2030-12-31T00:00:00+00:00", "--no-meters"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["errors"] == []
    monkeypatch.setenv("FLUX_CLOCK", "start=2020-01-01T00:00:00+00:00,speed=1")
    assert cli(["backfill", "--site", str(site), "--since", "2020-06-01T00:00:00+00:00", "--no-meters"]) == 2
    out = capsys.readouterr()
    assert "must be in the past" in out.err and out.out == ""  # an error is not the answer: stderr
