from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Literal

from controller.core.config import ConfigModel, Secret
from controller.core.logs import register_secret
from controller.core.schema import Field, model_validator


class BufferConfig(ConfigModel):
    path: str = Field(default="var/{site}", description="outbox directory; {site} is the site id")
    max_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024, description="outbox size bound")
    retention_days: float = Field(default=14.0, ge=0, description="keep uploaded rows this long for gap recovery")
    synchronous: Literal["full", "normal"] = Field(default="full", description="SQLite synchronous mode")


class SinkBase(ConfigModel):
    type: str
    name: str = Field(min_length=1)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    interval_s: float = Field(default=10.0, gt=0, description="upload cadence while there is nothing pending")
    gather_s: float = Field(
        default=3.0, ge=0, description="once new rows arrive, wait this long so they go up together: one request "
                                       "per table and one cursor commit for several outbox commits (0: at once)")
    timeout_s: float = Field(default=30.0, gt=0)
    child_drain_rows: int = Field(
        default=20_000, ge=0, description="when more rows than this wait for the sink (a backlog after an outage), "
                                          "a short-lived child process uploads them, so the daemon's memory stays "
                                          "at its steady size (0: always in the daemon)")
    backoff_max_s: float = Field(default=300.0, gt=0)
    outage_alert_after_s: float = Field(
        default=3600.0, gt=0, description="when the oldest row still pending for this sink is older than this "
                                          "(a cloud outage, a refused login, a sink slower than the site), an "
                                          "`upload_backlog` Error alert names the sink, the backlog's age and its "
                                          "rows, once per episode; an Info alert follows when it is younger again "
                                          "(the age is the flux_edge_outbox_oldest_pending_age_seconds gauge)")


class PostgrestSinkConfig(SinkBase):
    type: Literal["postgrest"]
    url: str = Field(min_length=1, description="base URL; /rest/v1/<table> is appended")
    schema_name: str = Field(default="flux", alias="schema")
    api_key: Secret | None = Field(default=None, description="sent as the apikey header")
    bearer_token: Secret | None = Field(default=None, description="sent as Authorization: Bearer; default api_key")


class PostgresSinkConfig(SinkBase):
    type: Literal["postgres"]
    dsn: Secret
    schema_name: str = Field(default="flux", alias="schema")
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _redact_passwords(self) -> PostgresSinkConfig:
        # The whole DSN is registered as a secret; its password alone is what libpq's messages quote.
        for secret in dsn_secrets(self.dsn.get_secret_value()):
            register_secret(secret)
        return self


_SECRET_OPTIONS = "password|sslpassword|oauth_client_secret"
_URI_USERINFO = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://([^@/?#]*)@")
_KV_SECRET = re.compile(rf"(?:^|\s)(?:{_SECRET_OPTIONS})\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)")
_QUERY_SECRET = re.compile(rf"[?&](?:{_SECRET_OPTIONS})=([^&#]*)")


def dsn_secrets(dsn: str) -> set[str]:
    """The DSN and every spelling of a password in it that an error message could quote.

    Found by pattern, not by libpq's parser: a DSN too malformed to parse is the one whose pieces
    libpq quotes back in its error."""
    found = {dsn}
    userinfo = _URI_USERINFO.match(dsn)
    if userinfo and ":" in userinfo.group(1):
        found |= {userinfo.group(1), userinfo.group(1).partition(":")[2]}
    for m in _KV_SECRET.finditer(dsn):
        quoted = m.group(1)
        found |= {quoted, quoted.strip("'"), quoted.strip("'").replace("\\'", "'").replace("\\\\", "\\")}
    found |= {m.group(1) for m in _QUERY_SECRET.finditer(dsn)}
    found |= {urllib.parse.unquote(v) for v in found}
    return {v for v in found if v}


SinkConfig = Annotated[PostgrestSinkConfig | PostgresSinkConfig, Field(discriminator="type")]


class UploaderConfig(ConfigModel):
    sinks: list[SinkConfig] = Field(default_factory=list)
    coverage_check_interval_s: float = Field(default=3600.0, gt=0)
    coverage_window_days: float = Field(default=7.0, gt=0)
