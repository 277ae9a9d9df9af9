"""The PostgreSQL sink: COPY a batch into a temporary table, then insert it with ON CONFLICT DO NOTHING.

The outbox holds each row as JSON; the batch is COPYed as JSON text and turned into typed rows by
the server (`json_populate_record`), so the edge never decodes and re-encodes the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from controller.clock import utc
from controller.logs import get_logger
from uploader.config import PostgresSinkConfig
from uploader.sink import DeviceEntry, ErrorKind, SinkError, sqlstate_kind
from uploader.tables import TABLES, CloudRow

log = get_logger("sink.postgres")

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


class PostgresSink:
    def __init__(self, config: PostgresSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._dsn = config.dsn.get_secret_value()
        self._conn: psycopg.AsyncConnection[Any] | None = None

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
                raise _classify(exc) from exc
            await self._conn.execute(sql.SQL("SET statement_timeout = {}").format(
                sql.Literal(int(self.config.timeout_s * 1000))))
            await self._conn.commit()
        return self._conn

    async def upload(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.upload_bodies(table, [CloudRow(table, "", datetime.min, r).body() for r in rows])

    async def upload_bodies(self, table: str, bodies: Sequence[str]) -> None:
        t = TABLES[table]
        schema = sql.Identifier(self.config.schema_name)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in t.all_columns)
        rec_cols = sql.SQL(", ").join(sql.SQL("r.") + sql.Identifier(c) for c in t.all_columns)
        insert = sql.SQL(
            "INSERT INTO {schema}.{table} ({cols}) SELECT {rec_cols} FROM flux_upload u, "
            "LATERAL json_populate_record(NULL::{schema}.{table}, u.j) r "
            "ORDER BY u.n ON CONFLICT ({conflict}) DO NOTHING").format(
            schema=schema, table=sql.Identifier(table), cols=cols, rec_cols=rec_cols,
            conflict=sql.SQL(", ").join(sql.Identifier(c) for c in t.conflict))
        data = "".join(f"{i}\t{b.translate(_COPY_ESCAPES)}\n" for i, b in enumerate(bodies)).encode()
        conn = await self._connection()
        try:
            async with conn.transaction():
                await conn.execute("CREATE TEMP TABLE IF NOT EXISTS flux_upload (n integer, j json) "
                                   "ON COMMIT DELETE ROWS")
                async with conn.cursor().copy("COPY flux_upload (n, j) FROM STDIN") as copy:
                    await copy.write(data)
                await conn.execute(insert)
        except psycopg.Error as exc:
            raise _classify(exc) from exc

    async def slots(self, table: str, device_id: str, start: datetime, end: datetime) -> set[datetime]:
        query = sql.SQL("SELECT time FROM {}.{} WHERE device_id = %s AND time >= %s AND time < %s").format(
            sql.Identifier(self.config.schema_name), sql.Identifier(table))
        conn = await self._connection()
        try:
            async with conn.transaction():
                cur = await conn.execute(query, (device_id, start, end))
                return {utc(r[0]) for r in await cur.fetchall()}
        except psycopg.Error as exc:
            raise _classify(exc) from exc

    async def register_devices(self, devices: Sequence[DeviceEntry]) -> None:
        query = sql.SQL("INSERT INTO {}.mg_device_registry (device_id, site, name, type) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (device_id) DO NOTHING").format(sql.Identifier(self.config.schema_name))
        conn = await self._connection()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(query, [(d.device_id, d.site, d.name, d.type) for d in devices])
        except psycopg.Error as exc:
            raise _classify(exc) from exc


def _classify(exc: psycopg.Error) -> SinkError:
    code = exc.sqlstate
    detail = f"{type(exc).__name__} {code or ''} {str(exc).splitlines()[0] if str(exc) else ''}".strip()[:300]
    kind = sqlstate_kind(code)
    if kind is None:
        text = str(exc).lower()
        auth_markers = ("authentication", "password", "permission denied", "pg_hba.conf", "role \"")
        if any(m in text for m in auth_markers):
            kind = ErrorKind.AUTH
        elif isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or code is None:
            kind = ErrorKind.TRANSIENT
        else:
            kind = ErrorKind.CONFIG
    return SinkError(kind, detail, code=code)
