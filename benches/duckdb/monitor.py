"""The monitoring rules of sql/views/monitor_*.sql on DuckDB, timed.

Usage: python3 benches/duckdb/monitor.py DATA_DIR RUNS [CODE=VIEW ...]
(the rules default to the eleven of bianzhi_engine::monitor::MONITOR_RULES;
benches/benches/monitor.rs passes its own list).

Prints, for benches/benches/monitor.rs:
    as_of <date>
    rule <code> rows <n> keys <k> seconds <median>
    total_seconds <median> keys <k>
and `warning <text>` lines for anything the bench should show.

What DuckDB runs is the same view SQL bianzhi runs: every sql/views/monitor_*.sql
file is executed as it is (the SQL is plain PostgreSQL-style SQL both engines
accept), over the live Parquet files of the same Delta tables, except the views
listed in TRANSLATED, which call bianzhi functions DuckDB does not have:

  * monitor_headcount_jump calls the window function mom_jump_z(headcount, 12, 6).
    DuckDB gets it spelled out with its own window aggregates: the change
    d_t = headcount − lag(headcount) (NULL for a pool's first month), then over
    the 12 rows before the current one (ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING)
    count(d), median(d) and mad(d), and z = 0.6745 (d − median) / mad when
    d is not NULL, at least 6 of those changes are non-NULL and mad > 0.
    DuckDB's median and mad interpolate the middle of an even count (mean of the
    two middle values), as bianzhi's do, and mad is unscaled like bianzhi's.
    Differences: none in the result (changes are integers, so median, MAD and z
    are computed exactly alike); in the work, DuckDB needs a second window pass
    over the changes (window functions cannot nest), where bianzhi's UDWF
    computes the changes and their trailing scores in one pass.

A translated view carries the SHA-256 of the file it translates; when the file
has changed since, a warning line says the translation may be stale.

Each run evaluates, like `bianzhi monitor` (engine/src/monitor.rs): the as-of
month (the latest month of monitor_calendar), then for each rule
`SELECT rule_code, org_id, person_id, period, score, detail FROM <view>
WHERE period <= as_of`, fetched into Python, and its alert keys
(org, person, period) counted — bianzhi merges rows of one key into one alert,
so `keys` is the number of alerts and `rows` the number of view rows. One
warm-up run is not counted.
"""

import hashlib
import os
import statistics
import sys
import time

import duckdb

from delta_tables import register

VIEWS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sql", "views")

# The rules of bianzhi_engine::monitor::MONITOR_RULES (code, view), in order.
DEFAULT_RULES = [
    ("over_quota", "monitor_over_quota"),
    ("over_leader_posts", "monitor_over_leader_posts"),
    ("extreme_vacancy", "monitor_extreme_vacancy"),
    ("paid_not_on_roster", "monitor_paid_not_on_roster"),
    ("on_roster_unpaid", "monitor_on_roster_unpaid"),
    ("multiple_payers", "monitor_multiple_payers"),
    ("paid_after_exit", "monitor_paid_after_exit"),
    ("payer_mismatch", "monitor_payer_mismatch"),
    ("headcount_jump", "monitor_headcount_jump"),
    ("entry_without_basis", "monitor_entry_without_basis"),
    ("ledger_imbalance", "monitor_ledger_imbalance"),
]

TABLES = [
    "external_roster",
    "person",
    "staff_assignment",
    "establishment_quota",
    "leadership_quota",
    "quota_ledger",
    "document",
    "org",
]

# view name -> (SHA-256 of the sql/views file translated, DuckDB SQL).
TRANSLATED = {
    "monitor_headcount_jump": (
        "d6f81f0f2d1ee31c8c1b928b673bb71f3d21a33834287059fc97ea2b42d33038",
        """
CREATE VIEW monitor_headcount_jump AS
WITH changes AS (
    SELECT
        m.org_id,
        m.quota_type,
        m.period,
        m.approved,
        m.headcount,
        m.headcount - lag(m.headcount) OVER w AS rise,
        lag(m.period) OVER w AS previous_period,
        min(m.approved) OVER (PARTITION BY m.org_id, m.quota_type ORDER BY m.period
                              ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS approved_before
    FROM monitor_pool_month m
    WINDOW w AS (PARTITION BY m.org_id, m.quota_type ORDER BY m.period)
),
baseline AS (
    -- mom_jump_z(headcount, 12, 6): the change (rise, = x_t − x_{t−1}) against
    -- the 12 changes before it.
    SELECT
        c.*,
        count(c.rise) OVER b AS baseline_n,
        median(CAST(c.rise AS DOUBLE)) OVER b AS baseline_median,
        mad(CAST(c.rise AS DOUBLE)) OVER b AS baseline_mad
    FROM changes c
    WINDOW b AS (PARTITION BY c.org_id, c.quota_type ORDER BY c.period
                 ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING)
),
series AS (
    SELECT
        org_id, quota_type, period, approved, headcount, rise, previous_period, approved_before,
        CASE WHEN rise IS NOT NULL AND baseline_n >= 6 AND baseline_mad > 0
             THEN CAST(0.6745 AS DOUBLE) * (CAST(rise AS DOUBLE) - baseline_median) / baseline_mad
        END AS z
    FROM baseline
)
SELECT
    'headcount_jump' AS rule_code,
    s.org_id,
    CAST(NULL AS BIGINT) AS person_id,
    s.period,
    CAST(s.rise AS DOUBLE) / CAST(greatest(s.approved, 1) AS DOUBLE) AS score,
    '{"quota_type":"' || s.quota_type || '","before":' || CAST(s.headcount - s.rise AS VARCHAR)
        || ',"after":' || CAST(s.headcount AS VARCHAR) || ',"approved":'
        || CAST(s.approved AS VARCHAR) || ',"z":' || coalesce(CAST(round(s.z, 2) AS VARCHAR), 'null')
        || '}' AS detail
FROM series s
JOIN org o ON o.org_id = s.org_id
WHERE s.previous_period = CAST(s.period - INTERVAL '1 month' AS DATE)
  AND s.rise >= 5
  AND CAST(s.rise AS DOUBLE) >= 0.15 * CAST(s.approved AS DOUBLE)
  AND (s.z IS NULL OR s.z >= 3.5)
  AND s.headcount <= s.approved
  AND s.approved_before = s.approved
  AND NOT (o.sector = '教育' AND extract(month FROM s.period) IN (8, 9))
""",
    ),
}


def view_statements():
    """(view name, CREATE VIEW text) of every monitor_* view, translated where needed."""
    out = []
    for name in sorted(os.listdir(VIEWS_DIR)):
        if not (name.startswith("monitor_") and name.endswith(".sql")):
            continue
        view = name[: -len(".sql")]
        with open(os.path.join(VIEWS_DIR, name), encoding="utf-8") as source:
            text = source.read()
        if view in TRANSLATED:
            digest, translated = TRANSLATED[view]
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
                print(
                    f"warning sql/views/{name} changed since its DuckDB translation in "
                    "benches/duckdb/monitor.py was written; the translation may be stale"
                )
            text = translated
        out.append((view, text))
    return out


def create_views(connection):
    """Create the views; DuckDB binds a view when it is created, so a view that
    uses another is retried until everything it needs exists."""
    pending = view_statements()
    while pending:
        failed = []
        for view, text in pending:
            try:
                connection.execute(text)
            except duckdb.CatalogException as error:
                failed.append((view, text, error))
        if len(failed) == len(pending):
            details = "; ".join(f"{view}: {error}" for view, _, error in failed)
            raise SystemExit(f"cannot create the monitor views on DuckDB: {details}")
        pending = [(view, text) for view, text, _ in failed]


def evaluate(connection, rules):
    """One run: the as-of month, then every rule's rows and keys, with times."""
    started = time.perf_counter()
    as_of = connection.execute("SELECT max(period) FROM monitor_calendar").fetchone()[0]
    results = []
    for code, view in rules:
        rule_started = time.perf_counter()
        rows = connection.execute(
            f"SELECT rule_code, org_id, person_id, period, score, detail FROM {view} "
            "WHERE period <= ?",
            [as_of],
        ).fetchall()
        keys = {(org_id, person_id, period) for _, org_id, person_id, period, _, _ in rows}
        results.append((code, len(rows), len(keys), time.perf_counter() - rule_started))
    return as_of, results, time.perf_counter() - started


def main():
    data_dir, runs = sys.argv[1], int(sys.argv[2])
    rules = [tuple(arg.split("=", 1)) for arg in sys.argv[3:]] or DEFAULT_RULES
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    register(connection, data_dir, TABLES)
    create_views(connection)
    evaluate(connection, rules)  # warm-up
    totals, per_rule, as_of, last = [], {}, None, []
    for _ in range(runs):
        as_of, last, total = evaluate(connection, rules)
        totals.append(total)
        for code, _, _, seconds in last:
            per_rule.setdefault(code, []).append(seconds)
    print(f"as_of {as_of}")
    for code, rows, keys, _ in last:
        print(f"rule {code} rows {rows} keys {keys} seconds {statistics.median(per_rule[code]):.6f}")
    print(f"total_seconds {statistics.median(totals):.6f} keys {sum(k for _, _, k, _ in last)}")


if __name__ == "__main__":
    main()
