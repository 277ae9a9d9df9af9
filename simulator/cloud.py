"""The cloud stand-in: the subset of PostgREST (v12, as Supabase deploys it) that flux-edge uses,
over a real PostgreSQL database with the real schema (created and migrated at start).

Served: `POST /rest/v1/<table>` (JSON object or array; `on_conflict` + `Prefer: resolution=...`
upserts, applied only when both are present, as PostgREST does; `Preference-Applied` answered),
`GET /rest/v1/<table>` (`select`, `eq/neq/gt/gte/lt/lte/in` filters, `order`, `limit`, `offset`),
`Content-Profile`/`Accept-Profile` schema selection, `apikey` + `Authorization: Bearer` checks, and
PostgREST's status codes and error bodies. Fault knobs (`CloudFaults`) inject outages, 5xx,
timeouts, 401, 413 and slow answers; `FLUX_SIM_CLOUD_FAULTS` (JSON) sets them for a subprocess.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from controller.core.logs import get_logger
from simulator.context import SimContext
from simulator.http import HttpServer, Request, Response
from uploader.migrate import ensure_database, migrate

log = get_logger("sim.cloud")

SCHEMA = "flux"
_PATH = re.compile(r"^/rest/v1/([A-Za-z_][A-Za-z0-9_]*)$")
_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass
class CloudFaults:
    down: bool = False  # every request answered 503 (an outage)
    error_5xx_probability: float = 0.0
    timeout_probability: float = 0.0  # hold the request, then drop the connection without an answer
    timeout_hold_s: float = 30.0
    unauthorized: bool = False  # every request answered 401 PGRST301 (an expired JWT)
    max_body_bytes: int | None = None  # larger request bodies answered 413
    latency_s: float = 0.0  # added to every answer
    strip_preference_applied: bool = False  # as a proxy that drops the header (or a PostgREST that ignored Prefer)

    @classmethod
    def from_env(cls) -> CloudFaults:
        text = os.environ.get("FLUX_SIM_CLOUD_FAULTS", "").strip()
        return cls(**json.loads(text)) if text else cls()


@dataclass
class RequestLog:
    method: str
    table: str
    status: int
    rows: int
    first_time: str | None = None


@dataclass
class CloudStandIn:
    dsn: str
    api_key: str
    host: str = "127.0.0.1"
    port: int = 0
    faults: CloudFaults = field(default_factory=CloudFaults)
    rng: random.Random = field(default_factory=random.Random)
    log: list[RequestLog] = field(default_factory=list)
    keep_log: bool = True
    max_rows: int | None = 1000  # Supabase's default cap on the rows one GET returns

    def __post_init__(self) -> None:
        self._server = HttpServer(self.handle, self.host, self.port)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._columns: dict[str, list[str]] = {}

    @property
    def url(self) -> str:
        return self._server.url

    async def start(self) -> None:
        await asyncio.to_thread(ensure_database, self.dsn)
        await asyncio.to_thread(migrate, self.dsn)
        self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await self._conn.execute("SET TimeZone = 'UTC'")
        cur = await self._conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
            "ORDER BY table_name, ordinal_position", (SCHEMA,))
        for table, column in await cur.fetchall():
            self._columns.setdefault(table, []).append(column)
        await self._server.start()
        self.port = self._server.port
        log.info("cloud_standin_started", url=self.url)

    async def close(self) -> None:
        await self._server.close()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> CloudStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the HTTP side --------------------------------------------------------------------------

    async def handle(self, req: Request) -> Response:
        f = self.faults
        if f.latency_s > 0:
            await asyncio.sleep(f.latency_s)
        if f.timeout_probability and self.rng.random() < f.timeout_probability:
            await asyncio.sleep(f.timeout_hold_s)
            return Response(close=True)
        if f.down or (f.error_5xx_probability and self.rng.random() < f.error_5xx_probability):
            return Response.json({"message": "An invalid response was received from the upstream server"}, 503)
        denied = self._check_auth(req)
        if denied is not None:
            return denied
        if f.max_body_bytes is not None and len(req.body) > f.max_body_bytes:
            return Response.json({"message": "Payload too large"}, 413)
        m = _PATH.match(req.path)
        if m is None:
            return _error(404, "PGRST125", f"Invalid path specified in request URL: {req.path}")
        table = m.group(1)
        profile_header = "content-profile" if req.method in ("POST", "PATCH", "DELETE") else "accept-profile"
        profile = req.headers.get(profile_header, "public")
        if profile != SCHEMA:
            if profile == "public":
                return _error(404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache")
            return _error(406, "PGRST106", f"The schema must be one of the following: {SCHEMA}")
        if table not in self._columns:
            return _error(404, "PGRST205", f"Could not find the table '{SCHEMA}.{table}' in the schema cache")
        if req.method == "POST":
            return await self._insert(req, table)
        if req.method == "GET":
            return await self._select(req, table)
        return _error(405, "PGRST117", f"Unsupported HTTP method: {req.method}")

    def _check_auth(self, req: Request) -> Response | None:
        if self.faults.unauthorized:
            return Response.json({"code": "PGRST301", "details": None, "hint": None, "message": "JWT expired"}, 401)
        key = req.headers.get("apikey")
        if key is None:
            return Response.json({"message": "No API key found in request",
                                  "hint": "No `apikey` request header or url param was found."}, 401)
        if key != self.api_key:
            return Response.json({"message": "Invalid API key", "hint": "Double check your Supabase `anon` or "
                                  "`service_role` API key."}, 401)
        auth = req.headers.get("authorization")
        if auth is not None and auth != f"Bearer {self.api_key}":
            return Response.json({"code": "PGRST301", "details": None, "hint": None,
                                  "message": "JWSError JWSInvalidSignature"}, 401)
        return None

    async def _insert(self, req: Request, table: str) -> Response:
        try:
            payload = req.json()
        except ValueError as exc:
            return _error(400, "PGRST102", f"Empty or invalid json: {exc}")
        rows = payload if isinstance(payload, list) else [payload]
        if not rows:
            return Response(201)
        if not all(isinstance(r, dict) for r in rows):
            return _error(400, "PGRST102", "All object keys must match")
        columns = list(rows[0].keys())
        known = self._columns[table]
        for c in columns:
            if c not in known:
                return _error(400, "PGRST204", f"Could not find the '{c}' column of '{table}' in the schema cache")
        prefer = _prefer(req.headers.get("prefer", ""))
        on_conflict = req.arg("on_conflict")
        resolution = prefer.get("resolution")
        ident_cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        query = sql.SQL("INSERT INTO {s}.{t} ({cols}) SELECT {cols} "
                        "FROM json_populate_recordset(NULL::{s}.{t}, %s::json)").format(
            s=sql.Identifier(SCHEMA), t=sql.Identifier(table), cols=ident_cols)
        applied: list[str] = []
        # As PostgREST does: conflict handling only with both on_conflict and a resolution preference.
        if on_conflict and resolution in ("ignore-duplicates", "merge-duplicates"):
            target = sql.SQL(", ").join(sql.Identifier(c.strip()) for c in on_conflict.split(","))
            if resolution == "ignore-duplicates":
                query += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(target)
            else:
                updates = sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns)
                query += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(target, updates)
            applied.append(f"resolution={resolution}")
        representation = prefer.get("return") == "representation"
        if representation:
            query += sql.SQL(" RETURNING to_json({s}.{t}.*)").format(s=sql.Identifier(SCHEMA), t=sql.Identifier(table))
        if "return" in prefer:
            applied.append(f"return={prefer['return']}")
        assert self._conn is not None
        try:
            async with self._lock:
                cur = await self._conn.execute(query, (json.dumps(rows),))
                returned = [r[0] for r in await cur.fetchall()] if representation else None
        except psycopg.Error as exc:
            return _pg_error(exc)
        if self.keep_log:
            self.log.append(RequestLog("POST", table, 201, len(rows), str(rows[0].get("time"))))
        strip = self.faults.strip_preference_applied
        headers = {"Preference-Applied": ", ".join(applied)} if applied and not strip else {}
        if representation:
            return Response.json(returned, 201, headers)
        return Response(201, headers=headers)

    async def _select(self, req: Request, table: str) -> Response:
        known = self._columns[table]
        select = req.arg("select") or "*"
        cols = known if select.strip() == "*" else [c.strip() for c in select.split(",")]
        for c in cols:
            if c not in known:
                return _error(400, "42703", f"column {table}.{c} does not exist")
        where: list[sql.Composable] = []
        params: list[Any] = []
        order: list[sql.Composable] = []
        limit = offset = None
        for name, value in req.query:
            if name == "select":
                continue
            if name == "order":
                for part in value.split(","):
                    col, _, direction = part.partition(".")
                    if col not in known:
                        return _error(400, "42703", f"column {table}.{col} does not exist")
                    order.append(sql.SQL("{} {}").format(
                        sql.Identifier(col), sql.SQL("DESC" if direction.startswith("desc") else "ASC")))
            elif name == "limit":
                limit = int(value)
            elif name == "offset":
                offset = int(value)
            else:
                if name not in known:
                    return _error(400, "42703", f"column {table}.{name} does not exist")
                op, _, operand = value.partition(".")
                if op == "in":
                    items = [v.strip().strip('"') for v in operand.strip("()").split(",") if v.strip()]
                    where.append(sql.SQL("{}::text = ANY(%s)").format(sql.Identifier(name)))
                    params.append(items)
                elif op in _OPS:
                    where.append(sql.SQL("{} " + _OPS[op] + " %s").format(sql.Identifier(name)))
                    params.append(operand)
                else:
                    return _error(400, "PGRST100", f'"failed to parse filter ({value})"')
        query = sql.SQL("SELECT {cols} FROM {s}.{t}").format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols), s=sql.Identifier(SCHEMA), t=sql.Identifier(table))
        if where:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
        if order:
            query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
        if self.max_rows is not None:
            limit = self.max_rows if limit is None else min(limit, self.max_rows)
        if limit is not None:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        if offset is not None:
            query += sql.SQL(" OFFSET {}").format(sql.Literal(offset))
        wrapped = sql.SQL("SELECT coalesce(json_agg(x), '[]'::json)::text FROM ({}) x").format(query)
        assert self._conn is not None
        try:
            async with self._lock:
                cur = await self._conn.execute(wrapped, params)
                row = await cur.fetchone()
        except psycopg.Error as exc:
            return _pg_error(exc)
        body = row[0].encode() if row else b"[]"
        return Response(200, body, {"Content-Type": "application/json; charset=utf-8"})


def _prefer(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        if k:
            out[k.strip()] = v.strip()
    return out


def _error(status: int, code: str, message: str, details: str | None = None, hint: str | None = None) -> Response:
    return Response.json({"code": code, "details": details, "hint": hint, "message": message}, status)


def _pg_error(exc: psycopg.Error) -> Response:
    """PostgREST's mapping of PostgreSQL errors to HTTP statuses (the cases an uploader can meet)."""
    code = exc.sqlstate or ""
    diag = exc.diag
    if code in ("23505", "23503"):
        status = 409
    elif code.startswith(("22", "23")) or code in ("42P10", "42703", "42804"):
        status = 400
    elif code == "42501":
        status = 403
    elif code == "42P01":
        status = 404
    elif code.startswith(("08", "53", "57")):
        status = 503
    else:
        status = 500
    return _error(status, code or "XX000", diag.message_primary or str(exc), diag.message_detail, diag.message_hint)


async def serve(ctx: SimContext) -> None:
    cfg = ctx.sim.cloud
    if cfg is None:
        return
    standin = CloudStandIn(cfg.dsn, cfg.api_key, cfg.host, cfg.port, faults=CloudFaults.from_env(),
                           rng=ctx.rng("cloud"), keep_log=False)
    try:
        await standin.start()
    except psycopg.OperationalError as exc:
        # No PostgreSQL here: the rest of the site still runs, and the daemon's uploads stay pending
        # in its outbox, as they would through a real cloud outage.
        log.error("cloud_standin_unavailable", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
        await standin.close()
        return
    ctx.shared["cloud"] = standin
    ctx.ready("cloud").set()
    try:
        await asyncio.Event().wait()
    finally:
        await standin.close()


def faults_json(faults: CloudFaults) -> str:
    """The FLUX_SIM_CLOUD_FAULTS value for `faults` (for tests that start the simulator as a process)."""
    return json.dumps(dataclasses.asdict(faults))
