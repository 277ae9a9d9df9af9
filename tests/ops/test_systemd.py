"""The unit file passes `systemd-analyze verify` and scores <= 2.0 on `systemd-analyze security`; the
install and uninstall scripts are idempotent and keep the site file, the secrets and the outbox."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

UNIT = "flux-edge.service"
EXEC_START = "/opt/flux-edge/venv/bin/flux-edge"
MAX_EXPOSURE = 2.0


def analyze() -> str:
    path = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    if not Path(path).exists():
        pytest.fail("systemd-analyze is missing: run `make services` (scripts/ensure-services.sh installs systemd)")
    return path


def unit_with_exec(root: Path, tmp_path: Path) -> Path:
    """The unit, its ExecStart pointed at an executable that exists here (verify checks it)."""
    exe = tmp_path / "bin" / "flux-edge"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    text = (root / "systemd" / UNIT).read_text()
    assert f"ExecStart={EXEC_START} run --site /etc/flux-edge/site.yaml" in text
    out = tmp_path / "units" / UNIT
    out.parent.mkdir(exist_ok=True)
    out.write_text(text.replace(EXEC_START, str(exe)))
    return out


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_what_the_field_needs(root: Path) -> None:
    d = directives((root / "systemd" / UNIT).read_text())
    assert d["Type"] == ["notify"]
    assert d["Restart"] == ["on-failure"]
    assert d["WatchdogSec"] == ["30s"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["User"] == ["flux-edge"] and d["Group"] == ["flux-edge"]
    assert d["StateDirectory"] == ["flux-edge"] and d["ConfigurationDirectory"] == ["flux-edge"]
    assert d["EnvironmentFile"] == ["-/etc/flux-edge/flux-edge.env"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["CapabilityBoundingSet"] == [""]
    assert d["NoNewPrivileges"] == ["yes"] and d["PrivateTmp"] == ["yes"]
    assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "@system-service" in d["SystemCallFilter"]
    assert d["ReadWritePaths"] == ["/etc/flux-edge"]  # remote config writes the site file


def test_systemd_analyze_verify_passes(root: Path, tmp_path: Path) -> None:
    unit = unit_with_exec(root, tmp_path)
    result = subprocess.run([analyze(), "verify", str(unit)], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert UNIT not in result.stderr, result.stderr


def test_systemd_analyze_verify_catches_a_broken_unit(root: Path, tmp_path: Path) -> None:
    unit = unit_with_exec(root, tmp_path)
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    result = subprocess.run([analyze(), "verify", str(unit)], check=False, capture_output=True, text=True, timeout=120)
    # verify exits 0 on directives it ignores: the warning naming the unit is what the check above rejects.
    assert "Failed to parse service type" in result.stderr
    assert UNIT in result.stderr


def test_security_exposure_is_at_most_two(root: Path, tmp_path: Path) -> None:
    unit = unit_with_exec(root, tmp_path)
    result = subprocess.run([analyze(), "security", "--offline=yes", "--no-pager", str(unit)],
                            check=False, capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def run_script(root: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(root / "systemd" / name), *args], check=False, capture_output=True, text=True,
                          timeout=120)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_scripts_are_valid_bash(root: Path) -> None:
    for name in ("install.sh", "uninstall.sh"):
        assert subprocess.run(["bash", "-n", str(root / "systemd" / name)], check=False, timeout=30).returncode == 0


def test_install_is_idempotent_and_upgrades_keep_config_secrets_and_outbox(root: Path, tmp_path: Path) -> None:
    dest = tmp_path / "target"
    first = run_script(root, "install.sh", "--root", str(dest), "--no-venv")
    assert first.returncode == 0, first.stderr
    etc, state = dest / "etc/flux-edge", dest / "var/lib/flux-edge"
    unit = dest / "etc/systemd/system" / UNIT
    assert unit.read_text() == (root / "systemd" / UNIT).read_text()
    assert (mode(etc), mode(state)) == (0o1770, 0o750)  # sticky: root's files stay root's
    assert mode(dest / "etc/flux-edge-limits.yaml") == 0o640
    assert mode(etc / "flux-edge.env") == 0o600
    assert mode(etc / "site.yaml") == 0o640
    assert (etc / "site.yaml").read_text() == (root / "config/sites/demo.yaml").read_text()

    # The site in use, its secrets and an outbox with undelivered rows.
    (etc / "site.yaml").write_text("site: {id: field, name: Field site}\n")
    (etc / "flux-edge.env").write_text("FLUX_CLOUD_API_KEY=real-key\n")
    outbox = state / "var" / "field" / "outbox.sqlite3"
    outbox.parent.mkdir(parents=True)
    outbox.write_bytes(b"pending rows")
    unit.write_text("stale unit from an older release\n")

    again = run_script(root, "install.sh", "--root", str(dest), "--no-venv")
    assert again.returncode == 0, again.stderr
    assert "example site file installed" not in again.stdout
    assert (etc / "site.yaml").read_text() == "site: {id: field, name: Field site}\n"
    assert (etc / "flux-edge.env").read_text() == "FLUX_CLOUD_API_KEY=real-key\n"
    assert outbox.read_bytes() == b"pending rows"
    assert unit.read_text() == (root / "systemd" / UNIT).read_text()  # the unit is upgraded

    removed = run_script(root, "uninstall.sh", "--root", str(dest))
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and not (dest / "opt/flux-edge").exists()
    assert outbox.read_bytes() == b"pending rows"  # kept without --purge
    assert (etc / "site.yaml").exists()
    assert run_script(root, "uninstall.sh", "--root", str(dest)).returncode == 0  # idempotent

    purged = run_script(root, "uninstall.sh", "--root", str(dest), "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not etc.exists() and not state.exists() and not (dest / "etc/flux-edge-limits.yaml").exists()


def test_install_refuses_unknown_arguments(root: Path, tmp_path: Path) -> None:
    result = run_script(root, "install.sh", "--root", str(tmp_path / "t"), "--frobnicate")
    assert result.returncode == 2
    assert "unknown argument --frobnicate" in result.stderr
