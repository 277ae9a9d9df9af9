"""Authenticated control: who may command the battery or push a config.

**MQTT commands and config pushes** are signed with HMAC-SHA256 by an operator key the site trusts.
The keys are in root's environment file (`FLUX_OPERATOR_KEYS=alice:<base64>,bob:<base64>`,
`/etc/flux-edge/flux-edge.env`, 0600, read by systemd only): a broker account alone is not enough.
A command carries `"timestamp"` (ISO 8601, UTC) and `"auth": {"key": NAME, "sig": HEX}`; the
signature covers the whole command except `auth`, as canonical JSON (sorted keys, no spaces), so the
eventId and the timestamp are inside it. Refused, answered and alerted: unsigned, unknown key, wrong
signature, a timestamp more than `MAX_SKEW_S` from now (stale or from the future), an eventId seen
before (remembered in `{buffer.path}/seen_commands.jsonl` for the skew window, so across restarts
too), and any retained command. The audit record names the verified key (`key:alice`), never the
`source` the sender claims.

HMAC rather than Ed25519: the stdlib has it, Ed25519 would add `cryptography` (a compiled dependency
not in the daemon's virtualenv); the cost is that a key's holder on the operator side could also
sign, so the keys stay in root's file and the operators' vault.

**Admin endpoint writes** (`POST /config/apply`) need `Authorization: Bearer <FLUX_ADMIN_TOKEN>`
(the same environment file); reads (`GET /status`) stay open on loopback. The audit names
`admin-token`, with the claimed actor kept as a claim.

`FLUX_COMMAND_AUTH=off` switches all of this off (the test suite's older fixtures use it; the unit
never sets it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.core.logs import get_logger, register_secret

log = get_logger("ops.auth")

KEYS_ENV = "FLUX_OPERATOR_KEYS"
ADMIN_TOKEN_ENV = "FLUX_ADMIN_TOKEN"
AUTH_ENV = "FLUX_COMMAND_AUTH"
MAX_SKEW_S = 300.0
SEEN_FILE = "seen_commands.jsonl"
MAX_SEEN = 100_000


def auth_required(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get(AUTH_ENV, "required") != "off"


def operator_keys(env: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """name -> key from FLUX_OPERATOR_KEYS (`name:base64[,name:base64]`); malformed entries are skipped, logged."""
    text = (env if env is not None else os.environ).get(KEYS_ENV, "")
    keys: dict[str, bytes] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, _, encoded = entry.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not name or len(key) < 16:
            log.error("operator_key_unusable", key=name or "(no name)", reason="expected name:base64 of >= 16 bytes")
            continue
        register_secret(encoded)
        keys[name] = key
    return keys


def canonical(command: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in command.items() if k != "auth"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(command: Mapping[str, Any], name: str, key: bytes) -> dict[str, Any]:
    """The command with its `auth` block (operator tools and tests)."""
    sig = hmac.new(key, canonical(command), hashlib.sha256).hexdigest()
    return {**command, "auth": {"key": name, "sig": sig}}


@dataclass(frozen=True)
class Verdict:
    key: str | None  # the verified key's name; None: refused
    reason: str = ""


class SeenEvents:
    """eventIds already run, with their timestamps, kept for the skew window (a file, across restarts)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.seen: dict[str, float] = {}
        if path is not None and path.exists():
            try:
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[-MAX_SEEN:]:
                    try:
                        item = json.loads(line)
                        self.seen[str(item["id"])] = float(item["ts"])
                    except (ValueError, KeyError, TypeError):
                        continue
            except OSError as exc:
                log.error("seen_commands_unreadable", path=str(path), error=str(exc))

    def __contains__(self, event_id: str) -> bool:
        return event_id in self.seen

    def add(self, event_id: str, ts: float, now: float) -> None:
        self.seen[event_id] = ts
        stale = [k for k, t in self.seen.items() if t < now - 2 * MAX_SKEW_S]
        for k in stale:
            del self.seen[k]
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if stale:  # rewrite without what can no longer be replayed
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text("".join(json.dumps({"id": k, "ts": t}) + "\n" for k, t in self.seen.items()))
                os.replace(tmp, self.path)
            else:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"id": event_id, "ts": ts}) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
        except OSError as exc:
            log.error("seen_commands_unwritable", path=str(self.path), error=str(exc))


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    ts = t.astimezone(UTC).timestamp()
    return ts if math.isfinite(ts) else None


def verify(raw: Mapping[str, Any], keys: Mapping[str, bytes], now: datetime, seen: SeenEvents) -> Verdict:
    """Whether a parsed command comes from a trusted operator, now, for the first time."""
    auth = raw.get("auth")
    if not isinstance(auth, dict) or not isinstance(auth.get("key"), str) or not isinstance(auth.get("sig"), str):
        return Verdict(None, "unsigned: a command needs auth {key, sig} (HMAC-SHA256 by an operator key)")
    name, sig = auth["key"], auth["sig"]
    key = keys.get(name)
    if key is None:
        return Verdict(None, f"unknown operator key {name[:40]!r}")
    expected = hmac.new(key, canonical(raw), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig.lower()):
        return Verdict(None, f"bad signature for key {name!r}")
    ts = _timestamp(raw.get("timestamp"))
    if ts is None:
        return Verdict(None, "signed command without a valid timestamp (ISO 8601 with an offset)")
    skew = now.timestamp() - ts
    if abs(skew) > MAX_SKEW_S:
        return Verdict(None, f"stale: timestamp {skew:+.0f} s from now (at most {MAX_SKEW_S:g} s)")
    event_id = raw.get("eventId", raw.get("id"))
    if not isinstance(event_id, str):
        return Verdict(None, "signed command without an eventId")
    if event_id in seen:
        return Verdict(None, f"replayed: eventId {event_id[:60]!r} was already run")
    seen.add(event_id, ts, now.timestamp())
    return Verdict(name)


def admin_token_ok(header: str | None, env: Mapping[str, str] | None = None) -> bool:
    token = (env if env is not None else os.environ).get(ADMIN_TOKEN_ENV, "")
    if len(token) < 16 or header is None:
        return False
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
