"""`flux-edge demo --speed N --start HH:MM` (`make run-fast`): one fast clock for simulator and daemon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.commands.demo import DEMO_HISTORY, PATH_HINT, fast_clock, seed_demo_history
from controller.config import load_site
from controller.core.clock import ScaledClock
from controller.forecast.history import HistoryStore
from controller.forecast.rows import read_history_csv


def test_fast_clock_starts_today_at_the_site_time() -> None:
    site = load_site("config/sites/demo.yaml").config
    now = datetime(2026, 6, 3, 9, 30, 12, tzinfo=UTC)  # 10:30 in London (BST)
    spec = fast_clock(site, 20, "15:45", now)
    assert spec == f"start=2026-06-03T14:45:00+00:00,speed=20,anchor={now.timestamp():.3f}"
    clock = ScaledClock.parse(spec)
    assert clock.speed == 20


def test_the_demo_tells_how_to_get_flux_edge_on_path() -> None:
    assert ".venv/bin/activate" in PATH_HINT and "flux-edge status" in PATH_HINT


def test_the_demo_daemon_runs_a_copy_under_var(tmp_path: Path) -> None:
    from controller.commands.demo import daemon_site_file

    tracked = Path("config/sites/demo.yaml")
    before = tracked.read_bytes()
    copy = daemon_site_file(str(tracked), tmp_path)
    assert copy == tmp_path / "site.yaml" and copy.read_bytes() == before
    copy.write_text("changed by config apply\n")  # what an apply does to the daemon's file
    assert tracked.read_bytes() == before
    assert daemon_site_file(str(tracked), tmp_path).read_bytes() == before  # each demo starts from the tracked one


def test_readme_and_make_run_tell_how_to_get_flux_edge_and_where_the_admin_port_is() -> None:
    from controller.ops.config import AdminConfig

    readme = Path("README.md").read_text()
    makefile = Path("Makefile").read_text()
    assert ". .venv/bin/activate" in readme and ". $(VENV)/bin/activate" in makefile
    assert "run-fast:" in makefile and "make run-fast" in readme
    assert f"127.0.0.1:{AdminConfig().port} (`ops.admin.port`" in readme


@pytest.mark.parametrize("now", [datetime(2027, 2, 10, 12, 7, tzinfo=UTC), datetime(2026, 6, 3, 16, 0, tzinfo=UTC)])
def test_a_first_demo_starts_on_the_shipped_history_moved_to_end_before_it(tmp_path: Path, now: datetime) -> None:
    periods, weeks = seed_demo_history(tmp_path, now)
    store = HistoryStore.open(tmp_path)
    try:
        rows = store.rows()
    finally:
        store.close()
    assert periods == len(rows) >= 55 * 48
    # Nothing from the demo's future, the last half-hour just before it, whole weeks moved.
    assert rows[-1].period_start + timedelta(minutes=30) <= now < rows[-1].period_start + timedelta(days=7)
    assert rows[0].period_start >= now - timedelta(days=56)
    assert (weeks == 0) == (now.year == 2026)
    original = {r.period_start: r.site_import_kwh for r in read_history_csv(DEMO_HISTORY)}
    assert all(original[r.period_start - timedelta(weeks=weeks)] == r.site_import_kwh for r in rows)
    assert seed_demo_history(tmp_path, now) == (0, 0)  # a demo's own history is never replaced
