"""bianzhi's anomaly window functions and aggregates, written with DuckDB's own
window aggregates, over one partition of N rows, timed.

Usage: python3 benches/duckdb/anomaly_windows.py SERIES.parquet RUNS LOO_ROWS
SERIES.parquet holds `t BIGINT` (0, 1, …: the order) and `x DOUBLE` (no NULLs),
written by benches/benches/anomaly_windows.rs. It is loaded once into an
in-memory DuckDB table (bianzhi's side is an in-memory table too).

Prints, for benches/benches/anomaly_windows.rs:
    load_seconds <s>
    case <name> seconds <median> n <non-NULL results> v <sum of results, or the aggregate>
Every query returns (n, v), so both engines compute every row and the sums
check that they agree.

The translations (bianzhi's semantics are in udfs/src/anomaly/):

  robust_z(x, 12, 6) OVER (ORDER BY t): over the 12 rows before the current one
    (ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING) count(x), median(x), mad(x);
    0.6745 (x − median) / mad when at least 6 are non-NULL and mad > 0. DuckDB's
    median and mad interpolate like bianzhi's and mad is unscaled: same values.
    bianzhi sorts each 12-value baseline; DuckDB uses its windowed quantile state.
  mom_jump_z(x, 12, 6): the same over d = x − lag(x), which needs a second
    window pass in DuckDB (window functions cannot nest).
  ewma(x, 0.2): z_j = 0.2 x_j + 0.8 z_{j−1}, z_0 = x_0, is a recursion; its only
    literal SQL form is a recursive CTE (one iteration per row: hopeless at 1M
    rows). Written out it is z_j = 0.2 Σ_{i≤j} 0.8^{j−i} x_i + 0.8^{j+1} x_0. Terms
    older than 200 rows weigh under 0.8^200 ≈ 4e-20 (below double precision), so
    a 200-row frame (ROWS BETWEEN 199 PRECEDING AND CURRENT ROW) gives the same
    doubles. The weights 0.8^{j−i} are split as 0.8^{j−r} · 0.8^{−(i−r)} with r the
    start of i's block of 200 rows, so the stored weights stay below 0.8^{−200}
    (no overflow); a frame spans at most two blocks, told apart by the block's
    parity (two conditional window sums). Agrees with the recursion to ~1e-15
    relative. Valid for the NULL-free series here (bianzhi skips NULL rows; with
    NULLs the rows would be numbered among the non-NULL ones).
  peer_robust_z(x) OVER (): median(x), mad(x), count(x) OVER () — the whole
    partition — and 0.6745 (x − median) / mad when count ≥ 3 and mad > 0.
  peer_robust_z(x, true) OVER () (leave one out): the same over the frame
    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW,
    count ≥ 3 others. DuckDB's windowed median/MAD over such frames is quadratic
    (on the 2-core machine: 1.1 s at 10k rows, 115 s at 100k), so this case runs
    on the first LOO_ROWS rows only (bianzhi does the same rows, and also 1M alone).
  mad(x): DuckDB's mad (unscaled, interpolated medians) — the same definition.
  iqr(x): quantile_cont(x, [0.25, 0.75]) (one sort for both quartiles), Q3 − Q1;
    quantile_cont interpolates as bianzhi's quartiles do.
  Two built-ins both engines have, as a reference for the plain engine cost:
  avg(x) over the same 12-row frame, and median(x).
"""

import statistics
import sys
import time

import duckdb

Z = "CAST(0.6745 AS DOUBLE)"


def trailing_robust_z(series, source):
    """robust_z(series, 12, 6) OVER (ORDER BY t) over `source` (columns t and the series)."""
    return f"""
SELECT count(z) AS n, sum(z) AS v FROM (
    SELECT CASE WHEN {series} IS NOT NULL AND baseline_n >= 6 AND baseline_mad > 0
                THEN {Z} * ({series} - baseline_median) / baseline_mad END AS z
    FROM (
        SELECT {series},
            count({series}) OVER b AS baseline_n,
            median({series}) OVER b AS baseline_median,
            mad({series}) OVER b AS baseline_mad
        FROM {source}
        WINDOW b AS (ORDER BY t ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING)
    ) baseline
) scored
"""


EWMA = """
WITH numbered AS (
    SELECT x, row_number() OVER (ORDER BY t) - 1 AS j FROM s
),
weighted AS (
    SELECT j, x, j // 200 AS block, j % 200 AS offset_in_block,
        x * pow(0.8, -(j % 200)) AS w
    FROM numbered
),
sums AS (
    SELECT j, block, offset_in_block,
        sum(CASE WHEN block % 2 = 0 THEN w END) OVER f AS even_blocks,
        sum(CASE WHEN block % 2 = 1 THEN w END) OVER f AS odd_blocks,
        first_value(x) OVER (ORDER BY j ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS x0
    FROM weighted
    WINDOW f AS (ORDER BY j ROWS BETWEEN 199 PRECEDING AND CURRENT ROW)
)
SELECT count(z) AS n, sum(z) AS v FROM (
    SELECT 0.2 * (pow(0.8, offset_in_block)
                    * coalesce(CASE WHEN block % 2 = 0 THEN even_blocks ELSE odd_blocks END, 0)
                  + pow(0.8, offset_in_block + 200)
                    * coalesce(CASE WHEN block % 2 = 0 THEN odd_blocks ELSE even_blocks END, 0))
           + pow(0.8, j + 1) * x0 AS z
    FROM sums
) smoothed
"""


def peer_robust_z(frame, source, fewest):
    return f"""
SELECT count(z) AS n, sum(z) AS v FROM (
    SELECT CASE WHEN x IS NOT NULL AND peers_n >= {fewest} AND peers_mad > 0
                THEN {Z} * (x - peers_median) / peers_mad END AS z
    FROM (
        SELECT x,
            count(x) OVER p AS peers_n,
            median(x) OVER p AS peers_median,
            mad(x) OVER p AS peers_mad
        FROM {source}
        WINDOW p AS ({frame})
    ) peers
) scored
"""


def cases(loo_rows):
    everything = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
    first_rows = f"(SELECT * FROM s WHERE t < {loo_rows}) s"
    return [
        ("robust_z", trailing_robust_z("x", "s")),
        (
            "mom_jump_z",
            trailing_robust_z("d", "(SELECT t, x - lag(x) OVER (ORDER BY t) AS d FROM s) changes"),
        ),
        ("ewma", EWMA),
        ("peer_robust_z", peer_robust_z(everything, "s", 3)),
        ("peer_robust_z_loo", peer_robust_z(everything + " EXCLUDE CURRENT ROW", first_rows, 3)),
        ("mad", "SELECT count(*) AS n, mad(x) AS v FROM s"),
        (
            "iqr",
            "SELECT n, q[2] - q[1] AS v FROM "
            "(SELECT count(*) AS n, quantile_cont(x, [0.25, 0.75]) AS q FROM s) quartiles",
        ),
        (
            "avg_frame",
            "SELECT count(a) AS n, sum(a) AS v FROM (SELECT avg(x) OVER "
            "(ORDER BY t ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING) AS a FROM s) w",
        ),
        ("median", "SELECT count(*) AS n, median(x) AS v FROM s"),
    ]


def main():
    parquet, runs, loo_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    started = time.perf_counter()
    connection.execute("CREATE TABLE s AS SELECT * FROM read_parquet(?)", [parquet])
    print(f"load_seconds {time.perf_counter() - started:.6f}")
    for name, sql in cases(loo_rows):
        times, result = [], None
        for run in range(runs + 1):
            run_started = time.perf_counter()
            result = connection.execute(sql).fetchone()
            if run > 0:  # the first run is a warm-up
                times.append(time.perf_counter() - run_started)
        n, v = result
        print(f"case {name} seconds {statistics.median(times):.6f} n {n} v {v!r}")


if __name__ == "__main__":
    main()
