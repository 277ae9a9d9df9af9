"""The real services the suite depends on are up: failing here explains many failures elsewhere."""

import psycopg


def test_postgres_database_per_test(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_mosquitto_reachable(mqtt_addr: tuple[str, int]) -> None:
    assert mqtt_addr[1] > 0
