"""The shipped history set and its generator: the spec's columns, synthetic and said so, at least 12
weeks, both clock changes, bank holidays, and the same bytes for the same seed."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType

from controller.engine.settlement import sp_of
from controller.forecast.forecasters import HISTORY_DAYS_USED, forecast_site
from controller.forecast.holidays import is_bank_holiday
from controller.forecast.rows import COLUMNS, read_history_csv
from controller.forecast.series import History

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "simulator/data/demo_history.csv.gz"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_history", ROOT / "scripts/gen_history.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_history"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_shipped_set() -> None:
    text = gzip.decompress(SHIPPED.read_bytes()).decode()
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert "SYNTHETIC" in comments[0]
    header = next(line for line in text.splitlines() if not line.startswith("#"))
    assert tuple(header.split(",")) == COLUMNS
    rows = read_history_csv(SHIPPED)
    days = Counter(sp_of(r.period_start)[0] for r in rows)
    assert len(days) >= 12 * 7
    assert days[date(2026, 3, 29)] == 46 and days[date(2026, 10, 25)] == 50
    assert sum(is_bank_holiday(d) for d in days) >= 3
    assert any(r.site_import_kwh is None for r in rows)  # the documented outage


def test_generator_is_deterministic(tmp_path: Path) -> None:
    gen = generator()
    outs = []
    for name in ("a.csv.gz", "b.csv.gz"):
        rows, note = gen.generate(str(ROOT / "config/sites/demo.yaml"), date(2026, 10, 24), date(2026, 10, 26), 7)
        gen.write_csv(rows, note, tmp_path / name)
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    assert len(read_history_csv(tmp_path / "a.csv.gz")) == 48 + 50


def test_the_daemons_eight_weeks_forecast_as_the_whole_history_does() -> None:
    rows = read_history_csv(SHIPPED)
    at = datetime(2026, 11, 2, 17, 40, tzinfo=UTC)
    recent = [r for r in rows if r.period_start >= at - timedelta(days=HISTORY_DAYS_USED)]
    assert forecast_site(History.from_rows(recent), at).as_json() == forecast_site(History.from_rows(rows), at).as_json()
