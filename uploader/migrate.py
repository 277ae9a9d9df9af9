"""Cloud schema migrations: numbered `.sql` files in `migrations/`, each applied once, in order.

Applied versions are recorded in `flux.schema_migrations`; an advisory lock keeps two migrating
controllers from racing. Every file is also written to be idempotent on its own (IF NOT EXISTS),
so a database migrated by hand or half-way converges to the same schema.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from controller.core.logs import get_logger

log = get_logger("migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x666C7578  # "flux"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    out: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if m is None:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path.name}")
        out.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise ValueError("two migrations share a version number")
    return out


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Bring the database's `flux` schema up to date; returns the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS flux")
            conn.execute("""CREATE TABLE IF NOT EXISTS flux.schema_migrations (
                version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
            done = {row[0] for row in conn.execute("SELECT version FROM flux.schema_migrations")}
            for m in migrations(directory):
                if m.version in done:
                    continue
                with conn.transaction():
                    conn.execute(m.sql.encode())
                    conn.execute("INSERT INTO flux.schema_migrations (version, name) VALUES (%s, %s)",
                                 (m.version, m.name))
                log.info("migration_applied", version=m.version, name=m.name)
                applied_now.append(m.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` if it does not exist (connecting to `postgres` on the same server)."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    name = str(info.get("dbname") or "postgres")
    admin = dict(info)
    admin["dbname"] = "postgres"
    with psycopg.connect(psycopg.conninfo.make_conninfo(**admin), autocommit=True) as conn:  # type: ignore[arg-type]
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            # Created meanwhile by someone else is fine.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
