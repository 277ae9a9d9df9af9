"""Boot with a bad site file (issue 15, item 5): the daemon runs the last good copy and alerts; with no
last good copy it exits 2 with the problems, one line each."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import free_port
from tests.ops.conftest import write_site


def test_a_bad_site_file_at_boot_falls_back_to_the_last_good_one(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site.yaml", bess_port=free_port(), meter_port=free_port(),
                      buffer={"path": str(tmp_path / "state")})
    good = site.read_text()
    (tmp_path / "site.yaml.last-good").write_text(good)
    site.write_text(good.replace("site_import_limit_kw: 300", "site_import_limit_kw: .inf"))
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "controller", "run", "--site", str(site)], stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "control_decision" not in log.read_text():
                time.sleep(0.2)
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            events = [entry.get("event") for entry in lines]
            assert "config_invalid" in events and "config_boot_fallback" in events, events[:20]
            assert "control_decision" in events  # running, on the last good file
            fallback = next(entry for entry in lines if entry.get("event") == "config_boot_fallback")
            assert fallback["level"] == "error" and fallback["running"].endswith("site.yaml.last-good")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
    assert code == 0
    assert "Traceback" not in log.read_text()


def test_no_last_good_copy_exits_2_with_one_line_problems(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: [\n")
    out = subprocess.run([sys.executable, "-m", "controller", "run", "--site", str(site)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stdout + out.stderr
    assert any(line.startswith(f"{site}:") for line in out.stdout.splitlines())
