"""The local web page in a real headless Chromium, against a daemon (`flux-edge run`, its own process) on
the simulator: it loads with no console error, shows what `status --json` reports, and updates without a
reload, and draws the chart of today (inline SVG) from `/today` over a history store filled beforehand. And
the page's optional second listener: the page without a token, `/status` only with it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from controller.config import load_site
from controller.core.clock import RealClock
from controller.engine.settlement import SP, current_sp_start
from controller.forecast.history import ControllerPeriod, HistoryStore
from controller.forecast.rows import PeriodRow
from simulator.modbus_devices import ModbusSite
from tests.conftest import ROOT
from tests.helpers import eventually, free_port, port_open
from tests.ops.cdp import chromium_page, find_chromium
from tests.ops.conftest import site_dict

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found: `make test` installs Debian's chromium "
    "(scripts/ensure-services.sh), which could not be installed on this machine")

DOM = """(() => {
  const fields = {};
  for (const el of document.querySelectorAll('[data-field]')) fields[el.dataset.field] = el.textContent;
  const rows = [...document.querySelectorAll('#devices tr')].map(r => [...r.children].map(c => c.textContent));
  const sinks = [...document.querySelectorAll('#sinks tr')].map(r => [...r.children].map(c => c.textContent));
  return {fields, rows, sinks, status: window.fluxLastStatus || null, updates: window.fluxUpdates || 0,
          marker: window.__notReloaded || null};
})()"""


CHART = """(() => {
  const svg = document.getElementById('chart');
  const count = (series, tag) => svg.querySelectorAll(`[data-series="${series}"] ${tag}`).length;
  const path = (series) => (svg.querySelector(`[data-series="${series}"] path`) || {getAttribute: () => ''})
    .getAttribute('d') || '';
  return {updates: window.fluxChartUpdates || 0, today: window.fluxLastToday || null,
          elements: svg.querySelectorAll('*').length, periods: Number(svg.getAttribute('data-periods')),
          batteryBars: count('history-battery', 'rect'), sitePath: path('history-site'), soePath: path('history-soe'),
          ahead: count('ahead', 'rect'), forecastBand: count('forecast', 'polygon'), nowLine: count('now', 'line'),
          dots: count('now', 'circle'), labels: svg.querySelectorAll('text').length,
          note: document.querySelector('[data-field="chart_note"]').textContent};
})()"""


def fill_history(directory: Path, days: int = 8) -> int:
    """Periods of a plausible site up to the current one (excluded): today's so far and `days` before."""
    store = HistoryStore.open(directory, synchronous="normal")
    end = current_sp_start(datetime.now(UTC))
    rows = []
    t = end - timedelta(days=days)
    while t < end:
        hour = t.hour + t.minute / 60
        site = 120 + 80 * math.sin((hour - 9) / 24 * 2 * math.pi)
        battery = 60.0 if 16 <= hour < 19 else (-80.0 if 1 <= hour < 4 else 0.0)
        rows.append((PeriodRow(t, site_import_kwh=max(site, 0) / 2, site_export_kwh=max(-site, 0) / 2,
                               battery_charge_kwh=max(-battery, 0) / 2, battery_discharge_kwh=max(battery, 0) / 2,
                               soe_end_kwh=500 + 40 * math.cos(hour / 24 * 2 * math.pi),
                               imbalance_price_p_per_kwh=10 + 15 * math.sin(hour / 24 * 2 * math.pi)),
                     ControllerPeriod(site_power_mean_kw=site, battery_power_mean_kw=battery)))
        t += SP
    store.put(rows)
    store.close()
    return len(rows)


def gbp(v: float) -> str:
    return f"{'-' if v < 0 else ''}£{abs(v):.2f}"


def num(v: float | None, unit: str) -> str:
    return "-" if v is None else f"{v:.1f} {unit}"


@contextlib.asynccontextmanager
async def daemon_on_simulator(tmp_path: Path, history: bool = False, **ops: Any) -> AsyncIterator[tuple[Path, int]]:
    ports = {"bess": free_port(), "meter": free_port(), "admin": free_port()}
    site = site_dict(bess_port=ports["bess"], meter_port=ports["meter"],
                     ops={"admin": {"enabled": True, "port": ports["admin"]}, **ops},
                     buffer={"path": str(tmp_path / "outbox")},
                     simulator={"seed": 7, "site_model": {"initial_soe_kwh": 420}})
    site["devices"][1].update({"ct1": 800, "ct2": 5})
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ("FLUX_CLOCK", "NOTIFY_SOCKET")}
    env["PAGE_TOKEN"] = "t0ken-for-the-vpn"
    if history:
        fill_history(tmp_path / "outbox")
    async with ModbusSite(load_site(path, env).config, RealClock()):
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller", "run", "--site", str(path), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await eventually(lambda: port_open("127.0.0.1", ports["admin"]), timeout=60)
            yield path, ports["admin"]
        finally:
            daemon.terminate()
            await asyncio.wait_for(daemon.wait(), 60)


async def status_json(path: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", "status", "--site", str(path), "--json", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    view: dict[str, Any] = json.loads(out)
    return view


@needs_chromium
async def test_the_page_in_chromium(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    async with daemon_on_simulator(tmp_path, history=True) as (path, admin), \
            chromium_page(CHROMIUM, tmp_path / "profile") as page:
        cli = await status_json(path)
        await eventually(lambda: cli["target_kw"] is not None)  # the control loop has decided
        await page.send("Page.navigate", url=f"http://127.0.0.1:{admin}/")

        async def dom() -> dict[str, Any]:
            value: dict[str, Any] = await page.evaluate(DOM)
            return value

        first: dict[str, Any] = {}
        for _ in range(3000):  # until the page has rendered a status with a decision in it
            first = await dom()
            if first["status"] and first["status"].get("reason"):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the page never rendered a decision: {first}")

        # What the page shows is what `status --json` reports: the same answer, the same keys and values.
        shown, status = first["fields"], first["status"]
        cli = await status_json(path)
        assert set(status) == set(cli)
        for key in ("site_id", "config_sha256", "configured_modes", "soe_capacity_kwh"):
            assert status[key] == cli[key], key
        assert [(d["name"], d["kind"]) for d in status["devices"]] == [(d["name"], d["kind"]) for d in cli["devices"]]
        assert shown["site_id"] == cli["site_id"] and shown["config_sha256"] == cli["config_sha256"][:12]
        assert shown["reason"] == status["reason"] and status["reason"].split(" ")[0] in (
            "idle", "charging", "discharging")
        assert shown["target_kw"] == num(status["target_kw"], "kW")
        assert shown["soe_kwh"] == num(status["soe_kwh"], "kWh")
        assert shown["site_power_kw"] == num(status["site_power_kw"], "kW")
        assert shown["battery_commanded_kw"] == num(status["battery_commanded_kw"], "kW")
        assert [r[:3] for r in first["rows"]] == [[d["name"], d["kind"], d["state"]] for d in status["devices"]]
        assert [r[0] for r in first["sinks"]] == [s["name"] for s in status["sinks"]]
        # The value expected today, as status reports it: the history filled before the start has today's periods
        # (valued at the planner's defaults: no planner on this site), and no plan for the rest: said, not a number.
        vt = status["value_today"]
        assert vt["earned_periods"] + vt["unrecorded_periods"] + vt["unplanned_periods"] == vt["periods"]
        assert vt["expected_gbp"] is None and vt["total_gbp"] is None
        assert vt["no_plan"] == "no planner in the site file: the rule-based modes decide"
        periods = f"{vt['earned_periods']} ended period{'' if vt['earned_periods'] == 1 else 's'}"
        unrecorded = f", {vt['unrecorded_periods']} not recorded" if vt["unrecorded_periods"] else ""
        assert shown["value_earned"] == f"{gbp(vt['earned_gbp'])} ({periods}{unrecorded})"
        assert shown["value_expected"] == vt["no_plan"] and shown["value_total"] == "- (no plan)"

        # It updates by itself: a newer status is rendered, and the page was not reloaded meanwhile.
        await page.evaluate("window.__notReloaded = 'still here'")
        later: dict[str, Any] = {}
        for _ in range(3000):
            later = await dom()
            if later["status"]["time"] != status["time"] and later["updates"] > first["updates"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the page did not update")
        assert later["marker"] == "still here"
        assert later["fields"]["time"] != shown["time"]
        assert later["fields"]["target_kw"] == num(later["status"]["target_kw"], "kW")
        polls = {d["name"]: d["polls_ok"] for d in later["status"]["devices"]}
        assert all(polls[d["name"]] >= d["polls_ok"] for d in cli["devices"])  # newer than the CLI's answer

        # The chart of today: drawn from /today (the history filled before the daemon started, its forecast).
        chart: dict[str, Any] = {}
        for _ in range(3000):
            chart = await page.evaluate(CHART)
            if chart["updates"] and chart["today"]["forecast"] and chart["dots"] >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the chart was never drawn with a forecast: {chart}")
        today = chart["today"]
        midnight = datetime.fromisoformat(today["day_start"])
        expected = (current_sp_start(datetime.fromisoformat(today["time"])) - midnight) // SP
        assert len(today["history"]) in (expected, expected + 1)  # a period may have ended meanwhile
        assert chart["periods"] == len(today["history"])
        assert chart["batteryBars"] == sum(1 for h in today["history"] if h["battery_kw"] is not None)
        if today["history"]:
            assert chart["sitePath"].startswith("M") and chart["sitePath"].count("H") == len(today["history"])
            assert chart["soePath"].startswith("M")
        assert chart["ahead"] == 1 and chart["nowLine"] == 1 and chart["forecastBand"] == 1
        assert chart["labels"] > 5 and f"{len(today['history'])} periods recorded today" in chart["note"]
        assert today["plan"] is None and "no plan" in chart["note"]  # no planner on this site

        assert page.errors() == []
        # The check sees errors when there are some (so the empty list above means something).
        await page.evaluate("console.error('probe from the test')")
        await eventually(lambda: any("probe from the test" in e for e in page.errors()))


async def test_the_page_on_another_address_needs_the_token_for_data(tmp_path: Path) -> None:
    web_port = free_port()
    web = {"web": {"host": "127.0.0.1", "port": web_port, "token": "${PAGE_TOKEN}"}}
    async with daemon_on_simulator(tmp_path, **web), httpx.AsyncClient() as client:
        await eventually(lambda: port_open("127.0.0.1", web_port), timeout=60)
        base = f"http://127.0.0.1:{web_port}"
        page = await client.get(f"{base}/")
        assert page.status_code == 200 and "<script src=\"app.js\"></script>" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert (await client.get(f"{base}/app.js")).headers["content-type"].startswith("text/javascript")
        assert (await client.get(f"{base}/status")).status_code == 401
        bad = await client.get(f"{base}/status", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401
        good = await client.get(f"{base}/status", headers={"Authorization": "Bearer t0ken-for-the-vpn"})
        assert good.status_code == 200 and good.json()["site_id"] == "testsite"
        assert (await client.post(f"{base}/config/apply", content=b"x")).status_code == 405  # read-only
