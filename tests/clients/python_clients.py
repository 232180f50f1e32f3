"""Python drivers against a running bianzhi: psycopg 3 (parameters, binary),
asyncpg, and SQLAlchemy's Inspector (tables, columns, comments).

Usage: python3 python_clients.py HOST PORT
Every check compares results, not only the absence of errors.
"""
import asyncio
import datetime
import decimal
import sys

import asyncpg
import psycopg
import sqlalchemy

HOST, PORT = sys.argv[1], int(sys.argv[2])
DSN = f"host={HOST} port={PORT} dbname=bianzhi user=analyst"


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"ok   {message}")


def psycopg_checks():
    with psycopg.connect(DSN, autocommit=True) as conn:
        # Parameters, text results.
        row = conn.execute(
            "SELECT org_name, tier FROM org WHERE org_id = %s AND tier = %s", (1, "市")
        ).fetchone()
        check(row == ("中共深圳市纪律检查委员会", "市"), f"psycopg parameters: {row}")
        # Binary results, every kind of value.
        with conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT count(*), min(period), max(amount), bool_or(amount > 0) "
                "FROM external_roster WHERE item = %s",
                ("应发工资",),
            )
            count, first, top, positive = cur.fetchone()
            check(isinstance(count, int) and count > 1000, f"psycopg binary bigint {count}")
            check(first == datetime.date(2020, 1, 1), f"psycopg binary date {first}")
            check(isinstance(top, decimal.Decimal) and top > 0, f"psycopg binary numeric {top}")
            check(positive is True, "psycopg binary boolean")
            cur.execute("SELECT recorded_at FROM staff_event ORDER BY event_id LIMIT 1")
            recorded = cur.fetchone()[0]
            check(recorded.tzinfo is not None and recorded.year >= 2020, f"psycopg timestamptz {recorded}")
        # Server-side prepared statements, executed repeatedly.
        for org_id in (1, 2, 3):
            got = conn.execute("SELECT org_id FROM org WHERE org_id = %s", (org_id,), prepare=True).fetchone()
            check(got == (org_id,), f"psycopg prepared statement for {org_id}")
        # Errors keep their SQLSTATE.
        try:
            conn.execute("SELECT * FROM no_such_table")
            check(False, "missing table raises")
        except psycopg.errors.UndefinedTable:
            check(True, "psycopg sees 42P01 as UndefinedTable")
        # A transaction with a savepoint, as SQLAlchemy and psycopg use them.
        with conn.transaction():
            with conn.transaction():
                conn.execute("SELECT 1")
        check(conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE, "psycopg nested transactions end idle")
        version = conn.execute("SELECT version()").fetchone()[0]
        check(version.startswith("PostgreSQL 16."), f"version() {version[:30]}")
        check(conn.info.server_version >= 160000, f"server_version {conn.info.server_version}")


async def asyncpg_checks():
    conn = await asyncpg.connect(host=HOST, port=PORT, user="analyst", database="bianzhi")
    rows = await conn.fetch("SELECT code FROM dict_code WHERE code_set = $1 ORDER BY sort_order", "gender")
    check([r["code"] for r in rows] == ["男", "女"], f"asyncpg parameters {[r['code'] for r in rows]}")
    value = await conn.fetchval("SELECT count(*) FROM org WHERE valid_from <= $1", datetime.date(2024, 12, 31))
    check(value > 1000, f"asyncpg date parameter {value}")
    # The reset a pool sends when a connection is returned.
    await conn.execute("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;")
    await conn.close()
    pool = await asyncpg.create_pool(host=HOST, port=PORT, user="analyst", database="bianzhi", min_size=2, max_size=4)
    results = await asyncio.gather(*[pool.fetchval("SELECT $1::bigint * 2", n) for n in range(8)])
    check(results == [n * 2 for n in range(8)], "asyncpg pool")
    await pool.close()


def sqlalchemy_checks():
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://analyst@{HOST}:{PORT}/bianzhi")
    inspector = sqlalchemy.inspect(engine)
    tables = inspector.get_table_names(schema="public")
    check("org" in tables and "external_roster" in tables, f"Inspector tables {len(tables)}")
    columns = {c["name"]: c for c in inspector.get_columns("org", schema="public")}
    check(str(columns["org_id"]["type"]) == "BIGINT", f"Inspector column type {columns['org_id']['type']}")
    check(columns["org_name"]["comment"] == "机构名称", f"Inspector column comment {columns['org_name']['comment']}")
    comment = inspector.get_table_comment("org", schema="public")["text"]
    check(comment == "机构", f"Inspector table comment {comment}")
    with engine.connect() as conn:
        total = conn.execute(sqlalchemy.text("SELECT count(*) FROM org WHERE tier = :tier"), {"tier": "区"}).scalar()
        check(total > 100, f"SQLAlchemy query {total}")


psycopg_checks()
asyncio.run(asyncpg_checks())
sqlalchemy_checks()
print("python clients: all checks passed")
