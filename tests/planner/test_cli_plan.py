"""`flux-edge plan` end to end, through the command line in a subprocess (the solve in its child process)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "sites" / "demo.yaml"
HEADER = ("period_start,site_import_kwh,site_export_kwh,battery_charge_kwh,battery_discharge_kwh,soe_end_kwh,"
          "imbalance_price_p_per_kwh,imbalance_volume_mwh\n")


def plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", "plan", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def history(tmp_path: Path) -> Path:
    """A week of half-hours: 60 kW of load, 5 p/kWh at night (00-06 UTC), 30 p/kWh 17-19 UTC, else 12."""
    start = datetime(2026, 5, 27, tzinfo=UTC)
    rows = []
    for i in range(7 * 48):
        t = start + timedelta(minutes=30 * i)
        price = 5.0 if t.hour < 6 else 30.0 if 17 <= t.hour < 19 else 12.0
        rows.append(f"{t.isoformat()},30,0,0,0,400,{price},1\n")
    path = tmp_path / "history.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def test_plan_json_has_the_spec_shape_and_buys_cheap_sells_dear(tmp_path: Path) -> None:
    out = plan("--site", str(DEMO), "--at", "2026-06-03T00:00:00Z", "--history", str(history(tmp_path)), "--json")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert {"plan_id", "created_at", "status", "breaches", "expected_value_gbp", "periods"} <= set(answer)
    assert answer["status"] == "optimal" and answer["breaches"] == []
    assert answer["created_at"] == "2026-06-03T00:00:00+00:00"
    periods = answer["periods"]
    assert len(periods) == 96
    assert set(periods[0]) >= {"start", "battery_kw", "soe_end_kwh", "price_p_per_kwh", "net_load_kw"}
    first_day = [(datetime.fromisoformat(p["start"]).hour, p["battery_kw"]) for p in periods[:48]]
    assert sum(kw for h, kw in first_day if h < 6) < -500  # charges at 5 p (which half-hours is a tie)
    assert sum(kw for h, kw in first_day if 17 <= h < 19) == pytest.approx(4 * 250)  # sells flat out at 30 p
    assert all(50 - 1e-6 <= p["soe_end_kwh"] <= 950 + 1e-6 for p in periods)
    assert answer["expected_value_gbp"] > 0


def test_plan_table_for_people(tmp_path: Path) -> None:
    out = plan("--site", str(DEMO), "--at", "2026-06-03T00:00:00Z", "--history", str(history(tmp_path)),
               "--soe-kwh", "20")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("plan ") and "status optimal" in lines[0]
    assert "BATTERY kW" in out.stdout and len(lines) > 96
    # Starting 30 kWh below soe_min, the first half-hour charges (115 kWh at most gets it back inside).
    first = next(ln for ln in lines if ln.startswith("Wed 2026-06-03 01:00"))
    assert float(first.split()[3]) < 0


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "yesterday"], "--at"),
    (["--history", "/nonexistent.csv"], "/nonexistent.csv"),
    (["--soe-kwh", "-5"], "--soe-kwh"),
])
def test_bad_input_is_one_line_on_stderr(args: list[str], message: str) -> None:
    out = plan("--site", str(DEMO), *args)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and "Traceback" not in out.stderr


# Without the demo's spike reserve: every later period is assumed at the one price given (the last known),
# so with the reserve's price the plan would sell as late as it can, not in the period the file names.
DEMO_BAND = "  band: {low_kwh: 250, high_kwh: 950, breach_p_per_kwh_h: 0.5}\n"


def test_a_schedule_price_file_next_to_the_site_file(tmp_path: Path) -> None:
    assert DEMO_BAND in DEMO.read_text()
    site = tmp_path / "site.yaml"
    site.write_text(DEMO.read_text().replace("price: {type: imbalance}", "price: {type: schedule, path: prices.json}")
                    .replace("horizon_h: 48", "horizon_h: 48\n  terminal_value_p_per_kwh: 0").replace(DEMO_BAND, ""))
    (tmp_path / "prices.json").write_text(json.dumps(
        [{"period_start": "2026-06-03T00:30:00Z", "price_p_per_kwh": 100.0}]))
    out = plan("--site", str(site), "--at", "2026-06-03T00:00:00Z", "--soe-kwh", "500", "--json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["periods"][1]["price_p_per_kwh"] == 100.0
    assert answer["periods"][1]["battery_kw"] == pytest.approx(250.0)  # sells flat out at 100 p
    assert any("price_p_per_kwh" in n for n in answer["notes"])  # the other periods' prices were assumed


def test_an_agile_price_feed(tmp_path: Path) -> None:
    import http.server
    import threading

    body = json.dumps({"results": [{"valid_from": "2026-06-03T00:30:00Z", "valid_to": "2026-06-03T01:00:00Z",
                                    "value_exc_vat": 100.0, "value_inc_vat": 105.0}]}).encode()

    class Feed(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        site = tmp_path / "site.yaml"
        url = f"http://127.0.0.1:{server.server_port}/products/AGILE/unit-rates/"
        site.write_text(DEMO.read_text().replace("price: {type: imbalance}", f"price: {{type: http, url: '{url}'}}")
                        .replace("horizon_h: 48", "horizon_h: 48\n  terminal_value_p_per_kwh: 0").replace(DEMO_BAND, ""))
        out = plan("--site", str(site), "--at", "2026-06-03T00:00:00Z", "--soe-kwh", "500", "--json")
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        assert answer["periods"][1]["price_p_per_kwh"] == 100.0
        assert answer["periods"][1]["battery_kw"] == pytest.approx(250.0)
    finally:
        server.shutdown()
    out = plan("--site", str(site), "--at", "2026-06-03T00:00:00Z", "--soe-kwh", "500", "--json")
    assert out.returncode == 2 and "no answer" in out.stderr and out.stdout == ""  # the feed is gone
