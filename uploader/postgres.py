"""The PostgreSQL sink: COPY, and for a batch that is partly there already, COPY into a temporary
table then INSERT ... ON CONFLICT DO NOTHING: a batch sent twice leaves one row per key."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from controller.core.clock import utc
from controller.core.logs import get_logger
from uploader.config import PostgresSinkConfig, dsn_secrets
from uploader.sink import DeviceEntry, ErrorKind, SinkError, sqlstate_kind
from uploader.tables import TABLES, CloudRow, CloudTable

log = get_logger("sink.postgres")



class PostgresSink:
    def __init__(self, config: PostgresSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._dsn = config.dsn.get_secret_value()
        self._hide = _secrets_of(self._dsn)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._optimistic = True

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._dsn, connect_timeout=max(1, int(self.config.timeout_s)))
            except psycopg.Error as exc:
                raise _classify(exc, self._hide, connecting=True) from exc
            await self._conn.execute(sql.SQL("SET statement_timeout = {}").format(
                sql.Literal(int(self.config.timeout_s * 1000))))
            await self._conn.commit()
        return self._conn

    async def upload(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.upload_bodies(table, [CloudRow(table, "", datetime.min, r).body() for r in rows])

    async def upload_bodies(self, table: str, bodies: Sequence[str]) -> None:
        """COPY the batch straight into the table; if any of it is already there (a resend), roll that back
        and go through a temporary table with INSERT ... ON CONFLICT DO NOTHING instead.

        The direct COPY is the fast path of a backfill (rows the cloud does not have); the temporary
        table is what makes a resend idempotent. After a conflict the next batch takes the temporary
        table at once, until a batch goes in whole again.
        """
        t = TABLES[table]
        conn = await self._connection()
        try:
            async with conn.transaction():
                if self._optimistic:
                    try:
                        async with conn.transaction():  # a savepoint: a conflict undoes only the COPY
                            await self._copy(conn, sql.SQL("{}.{}").format(
                                sql.Identifier(self.config.schema_name), sql.Identifier(table)), t, bodies)
                        return
                    except psycopg.errors.UniqueViolation:
                        self._optimistic = False
                inserted = await self._insert_via_temp(conn, table, bodies)
                self._optimistic = inserted == len(bodies)
        except psycopg.Error as exc:
            raise _classify(exc, self._hide) from exc

    async def _copy(self, conn: psycopg.AsyncConnection[Any], target: sql.Composable, t: CloudTable,
                    bodies: Sequence[str]) -> None:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in t.all_columns)
        async with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, cols)) as copy:
            # In chunks: the server inserts one chunk while the next is being formatted.
            for i in range(0, len(bodies), COPY_CHUNK_ROWS):
                await copy.write(copy_text(t, bodies[i:i + COPY_CHUNK_ROWS]))

    async def _insert_via_temp(self, conn: psycopg.AsyncConnection[Any], table: str, bodies: Sequence[str]) -> int:
        t = TABLES[table]
        schema = sql.Identifier(self.config.schema_name)
        temp = sql.Identifier(f"flux_upload_{table}")
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in t.all_columns)
        await conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}.{}) ON COMMIT DELETE ROWS").format(
            temp, schema, sql.Identifier(table)))
        await self._copy(conn, temp, t, bodies)
        cur = await conn.execute(sql.SQL(
            "INSERT INTO {schema}.{table} ({cols}) SELECT {cols} FROM {temp} "
            "ON CONFLICT ({conflict}) DO NOTHING").format(
            schema=schema, table=sql.Identifier(table), cols=cols, temp=temp,
            conflict=sql.SQL(", ").join(sql.Identifier(c) for c in t.conflict)))
        return cur.rowcount

    async def slots(self, table: str, device_id: str, start: datetime, end: datetime) -> set[datetime]:
        query = sql.SQL("SELECT time FROM {}.{} WHERE device_id = %s AND time >= %s AND time < %s").format(
            sql.Identifier(self.config.schema_name), sql.Identifier(table))
        conn = await self._connection()
        try:
            async with conn.transaction():
                cur = await conn.execute(query, (device_id, start, end))
                return {utc(r[0]) for r in await cur.fetchall()}
        except psycopg.Error as exc:
            raise _classify(exc, self._hide) from exc

    async def id_slots(self, table: str, device_id: str, id_column: str, start: datetime,
                       end: datetime) -> set[tuple[str, datetime]]:
        query = sql.SQL("SELECT {}::text, time FROM {}.{} WHERE device_id = %s AND time >= %s AND time < %s").format(
            sql.Identifier(id_column), sql.Identifier(self.config.schema_name), sql.Identifier(table))
        conn = await self._connection()
        try:
            async with conn.transaction():
                cur = await conn.execute(query, (device_id, start, end))
                return {(str(r[0]), utc(r[1])) for r in await cur.fetchall()}
        except psycopg.Error as exc:
            raise _classify(exc, self._hide) from exc

    async def register_devices(self, devices: Sequence[DeviceEntry]) -> None:
        query = sql.SQL("INSERT INTO {}.mg_device_registry (device_id, site, name, type) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (device_id) DO NOTHING").format(sql.Identifier(self.config.schema_name))
        conn = await self._connection()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(query, [(d.device_id, d.site, d.name, d.type) for d in devices])
        except psycopg.Error as exc:
            raise _classify(exc, self._hide) from exc


COPY_CHUNK_ROWS = 500
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(table: CloudTable, bodies: Sequence[str]) -> bytes:
    """The rows (JSON objects, as the outbox stores them) as COPY text, columns in `table.all_columns` order.

    Rows of the readings tables hold only numbers, nulls, a uuid and a timestamp, written by
    `tables.py` in column order: those are matched against one pattern of exactly that shape and
    rewritten without decoding. Anything else (another shape, tables with text or JSON columns)
    takes the general path: decode, format each value.
    """
    columns = table.all_columns
    shape = _row_pattern(table)
    lines: list[str] = []
    for body in bodies:
        m = shape.fullmatch(body) if shape is not None else None
        if m is not None:
            lines.append("\t".join(m.groups()).replace("null", "\\N"))
        else:
            d = json.loads(body)
            lines.append("\t".join(_copy_value(d.get(c)) for c in columns))
    lines.append("")
    return "\n".join(lines).encode()


@functools.cache
def _row_pattern(table: CloudTable) -> re.Pattern[str] | None:
    if not all(kind in ("real", "integer") for _, kind in table.columns):
        return None
    number = r"(null|-?[0-9][0-9.eE+-]*)"
    parts = ['"device_id":"([0-9a-f-]{36})"', '"time":"([0-9T:.+-]+)"']
    parts += [f'"{re.escape(c)}":{number}' for c in table.column_names]
    return re.compile("\\{" + ",".join(parts) + "\\}")


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":")).translate(_ESCAPES)


def _secrets_of(dsn: str) -> tuple[str, ...]:
    """What `_classify` takes out of error texts, longest first (a password inside the DSN goes with it)."""
    found = dsn_secrets(dsn)
    with contextlib.suppress(psycopg.Error):  # a malformed DSN: the patterns of dsn_secrets found what there is
        found |= {str(v) for k, v in conninfo_to_dict(dsn).items() if k in _SECRET_OPTIONS and v}
    return tuple(sorted(found, key=len, reverse=True))


_SECRET_OPTIONS = ("password", "sslpassword", "oauth_client_secret")
# What the server says at connection time arrives without a SQLSTATE psycopg exposes: its text tells.
_NO_DATABASE = re.compile(r'database "[^"]*" does not exist')
_AUTH_MARKERS = ("authentication", "password", "permission denied", "pg_hba.conf", "role \"")


def _classify(exc: psycopg.Error, hide: Sequence[str] = (), *, connecting: bool = False) -> SinkError:
    """The kind of a psycopg error, its text without any of `hide` (the DSN's secrets).

    Connecting, a DSN that cannot work however often it is tried (malformed, an invalid option value, a
    database that does not exist, a login refused) is a configuration error: alerted and retried slowly,
    not retried as a transient forever. A host name that does not resolve stays transient: at a site
    that is what a DNS outage looks like too (the backlog alert names it if it lasts)."""
    code = exc.sqlstate
    text = " ".join(str(exc).split())
    for secret in hide:
        # Every length: a short password still must not reach a log line, an alert or the cloud.
        text = text.replace(secret, "***")
    malformed = connecting and isinstance(exc, psycopg.ProgrammingError)
    if malformed:
        # libpq quotes pieces of a DSN it cannot parse: only the option names it knows are kept.
        text = "malformed DSN: " + re.sub(r'"([^"]*)"', lambda m: m.group(0) if m.group(1) in _conninfo_keywords()
                                          or len(m.group(1)) <= 1 else '"..."', text)
    detail = f"{type(exc).__name__} {code or ''} {text}".strip()[:300]
    kind = sqlstate_kind(code)
    if kind is None:
        lower = text.lower()
        if malformed:
            kind = ErrorKind.CONFIG
        elif any(m in lower for m in _AUTH_MARKERS):
            kind = ErrorKind.AUTH
        elif connecting and (_NO_DATABASE.search(text) or lower.startswith("connection is bad: invalid")):
            kind = ErrorKind.CONFIG  # no such database, an option's value libpq refuses (sslmode, port)
        elif isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or code is None:
            kind = ErrorKind.TRANSIENT
        else:
            kind = ErrorKind.CONFIG
    return SinkError(kind, detail, code=code)


@functools.cache
def _conninfo_keywords() -> frozenset[str]:
    return frozenset(o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults())
