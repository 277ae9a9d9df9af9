"""The command-line side of the admin endpoint: where it listens (from the site file), and one request."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from controller.ops.config import AdminConfig


class AdminUnavailable(Exception):
    """Nothing answers on the admin address: the daemon is not running (or admin is disabled)."""


def admin_address(site_path: str | Path) -> tuple[str, int]:
    """The admin endpoint of the site file, read loosely: the operator's shell may lack the daemon's secrets."""
    defaults = AdminConfig()
    try:
        data = yaml.safe_load(Path(site_path).read_text())
    except (OSError, yaml.YAMLError):
        data = None
    admin = (((data or {}).get("ops") or {}).get("admin") or {}) if isinstance(data, dict) else {}
    host = admin.get("host", defaults.host) if isinstance(admin, dict) else defaults.host
    port = admin.get("port", defaults.port) if isinstance(admin, dict) else defaults.port
    return str(host), int(port)


def actor() -> str:
    """Who is acting, for the records: the SSH user and address where there is one."""
    user = os.environ.get("SUDO_USER") or os.environ.get("USER") or getpass.getuser()
    ssh = os.environ.get("SSH_CONNECTION", "").split()
    return f"ssh:{user}@{ssh[0]}" if ssh else f"cli:{user}"


def request(method: str, host: str, port: int, path: str, *, body: bytes | None = None,
            headers: Mapping[str, str] | None = None, timeout_s: float = 10.0) -> tuple[int, Any]:
    url = f"http://{host}:{port}{path}"
    try:
        response = httpx.request(method, url, content=body, headers=dict(headers or {}), timeout=timeout_s)
    except httpx.ConnectError as exc:
        raise AdminUnavailable(f"no daemon answers on {host}:{port} ({exc})") from None
    try:
        return response.status_code, response.json()
    except json.JSONDecodeError:
        return response.status_code, {"message": response.text}
