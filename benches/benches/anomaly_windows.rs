//! Anomaly functions on one big window partition: `robust_z(x, 12, 6)`,
//! `mom_jump_z(x, 12, 6)` and `ewma(x, 0.2)` `OVER (ORDER BY t)`,
//! `peer_robust_z(x)` `OVER ()` (the whole partition as peers), and the
//! aggregates `mad(x)` and `iqr(x)`, over one partition of 1M rows
//! (BIANZHI_BENCH_ROWS) of a deterministic series, through a SessionContext
//! with bianzhi's functions registered. The same series is written once to
//! Parquet, loaded into DuckDB, and the same results are computed there with
//! DuckDB's window aggregates (median/mad over sliding frames, …; see
//! benches/duckdb/anomaly_windows.py for each translation), in the same run;
//! the bench prints both times, their ratio, and whether the results (count of
//! non-NULL scores and their sum) agree.
//!
//! `peer_robust_z(x, true)` (leave one out) is compared on the first 10,000
//! rows (BIANZHI_BENCH_LOO_ROWS): DuckDB's median/MAD over `EXCLUDE CURRENT
//! ROW` frames is quadratic. Two built-ins, `avg` over the same 12-row frame
//! and `median`, show each engine's plain window and aggregate cost.
//!
//! Run: `cargo bench -p bianzhi-benches --bench anomaly_windows` (needs
//! `pip install duckdb` for the comparison; it is skipped with a note if not).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use datafusion::arrow::array::{Array, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;

const RUNS: usize = 5;
const BATCH_ROWS: i64 = 100_000;

/// The bianzhi side of each case: name (the DuckDB script's), label, SQL.
/// Every query returns (n, v): non-NULL results and their sum, or the aggregate.
fn cases(loo_rows: i64) -> Vec<(&'static str, String, String)> {
    let scored = |call: &str| {
        format!("SELECT count(z) AS n, sum(z) AS v FROM (SELECT {call} AS z FROM s) w")
    };
    vec![
        (
            "robust_z",
            "robust_z(x, 12, 6) OVER (ORDER BY t)".into(),
            scored("robust_z(x, 12, 6) OVER (ORDER BY t)"),
        ),
        (
            "mom_jump_z",
            "mom_jump_z(x, 12, 6) OVER (ORDER BY t)".into(),
            scored("mom_jump_z(x, 12, 6) OVER (ORDER BY t)"),
        ),
        (
            "ewma",
            "ewma(x, 0.2) OVER (ORDER BY t)".into(),
            scored("ewma(x, 0.2) OVER (ORDER BY t)"),
        ),
        (
            "peer_robust_z",
            "peer_robust_z(x) OVER ()".into(),
            scored("peer_robust_z(x) OVER ()"),
        ),
        (
            "peer_robust_z_loo",
            format!("peer_robust_z(x, true) OVER (), {loo_rows} rows"),
            format!(
                "SELECT count(z) AS n, sum(z) AS v FROM \
                 (SELECT peer_robust_z(x, true) OVER () AS z FROM s WHERE t < {loo_rows}) w"
            ),
        ),
        (
            "mad",
            "mad(x)".into(),
            "SELECT count(*) AS n, mad(x) AS v FROM s".into(),
        ),
        (
            "iqr",
            "iqr(x)".into(),
            "SELECT count(*) AS n, iqr(x) AS v FROM s".into(),
        ),
        (
            "avg_frame",
            "built-in avg(x), same 12-row frame".into(),
            scored("avg(x) OVER (ORDER BY t ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING)"),
        ),
        (
            "median",
            "built-in median(x)".into(),
            "SELECT count(*) AS n, median(x) AS v FROM s".into(),
        ),
    ]
}

/// splitmix64: deterministic noise.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// t = 0, 1, …; x = a level that steps up by 10 every 100,000 rows, noise in
/// [−10, 10] with two decimals, and a spike of +200 every 997 rows.
fn series(rows: i64) -> anyhow::Result<(Arc<Schema>, Vec<RecordBatch>)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("t", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
    ]));
    let mut batches = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + BATCH_ROWS).min(rows);
        let t = Int64Array::from_iter_values(start..end);
        let x = Float64Array::from_iter_values((start..end).map(|t| {
            let level = 500.0 + 10.0 * (t / 100_000) as f64;
            let noise = (mix(t as u64) % 2001) as f64 / 100.0 - 10.0;
            let spike = if t % 997 == 0 { 200.0 } else { 0.0 };
            level + noise + spike
        }));
        batches.push(RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(t), Arc::new(x)],
        )?);
        start = end;
    }
    Ok((schema, batches))
}

fn write_parquet(path: &Path, schema: Arc<Schema>, batches: &[RecordBatch]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, schema, None)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds.get(seconds.len() / 2).copied().unwrap_or(f64::NAN)
}

/// (n, v) of a one-row result.
fn result_of(batches: &[RecordBatch]) -> anyhow::Result<(i64, Option<f64>)> {
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .context("no result row")?;
    let n = cast(batch.column(0), &DataType::Int64)?;
    let n = n
        .as_any()
        .downcast_ref::<Int64Array>()
        .context("n is not an integer")?;
    let v = cast(batch.column(1), &DataType::Float64)?;
    let v = v
        .as_any()
        .downcast_ref::<Float64Array>()
        .context("v is not a number")?;
    Ok((n.value(0), v.is_valid(0).then(|| v.value(0))))
}

async fn time_query(ctx: &SessionContext, sql: &str) -> anyhow::Result<(f64, (i64, Option<f64>))> {
    let mut seconds = Vec::new();
    let mut result = (0, None);
    // One warm-up run, not counted.
    for run in 0..=RUNS {
        let started = Instant::now();
        let batches = ctx.sql(sql).await?.collect().await?;
        let elapsed = started.elapsed().as_secs_f64();
        result = result_of(&batches)?;
        if run > 0 {
            seconds.push(elapsed);
        }
    }
    Ok((median(seconds), result))
}

struct DuckResults {
    load_seconds: f64,
    cases: BTreeMap<String, (f64, i64, Option<f64>)>,
}

fn duckdb_results(parquet: &Path, loo_rows: i64) -> Option<DuckResults> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb/anomaly_windows.py");
    let output = match Command::new("python3")
        .arg(script)
        .arg(parquet)
        .arg(RUNS.to_string())
        .arg(loo_rows.to_string())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            println!("  duckdb comparison not run: python3: {e}");
            return None;
        }
    };
    if !output.status.success() {
        println!(
            "  duckdb comparison not run (pip install duckdb): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    let mut results = DuckResults {
        load_seconds: f64::NAN,
        cases: BTreeMap::new(),
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["load_seconds", seconds] => {
                results.load_seconds = seconds.parse().unwrap_or(f64::NAN);
            }
            ["case", name, "seconds", seconds, "n", n, "v", v] => {
                let (Ok(seconds), Ok(n)) = (seconds.parse(), n.parse()) else {
                    println!("  unreadable duckdb line: {line}");
                    continue;
                };
                results
                    .cases
                    .insert((*name).to_string(), (seconds, n, v.parse().ok()));
            }
            _ => println!("  duckdb: {line}"),
        }
    }
    Some(results)
}

fn agree(ours: (i64, Option<f64>), theirs: (i64, Option<f64>)) -> bool {
    ours.0 == theirs.0
        && match (ours.1, theirs.1) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            (None, None) => true,
            _ => false,
        }
}

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "NULL".to_string(), |v| format!("{v:.6}"))
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rows: i64 = std::env::var("BIANZHI_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let loo_rows: i64 = std::env::var("BIANZHI_BENCH_LOO_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (schema, batches) = series(rows)?;
    let temporary = tempfile::tempdir()?;
    let parquet = temporary.path().join("series.parquet");
    write_parquet(&parquet, schema.clone(), &batches)?;
    runtime.block_on(async {
        let ctx = SessionContext::new();
        let mut registry = ctx.clone();
        bianzhi_udfs::register_all(&mut registry)?;
        // One partition: the table is one window partition read in one stream.
        ctx.register_table("s", Arc::new(MemTable::try_new(schema, vec![batches])?))?;
        println!(
            "anomaly functions over one partition of {rows} rows \
             (median of {RUNS} runs after a warm-up):"
        );
        let cases = cases(loo_rows);
        let mut ours = Vec::new();
        for (name, label, sql) in &cases {
            let (seconds, result) = time_query(&ctx, sql).await?;
            ours.push((*name, label.clone(), seconds, result));
        }
        // bianzhi only: leave-one-out over the whole partition.
        let loo_all = "SELECT count(z) AS n, sum(z) AS v FROM \
            (SELECT peer_robust_z(x, true) OVER () AS z FROM s) w";
        let (loo_seconds, loo_result) = time_query(&ctx, loo_all).await?;
        let duck = duckdb_results(&parquet, loo_rows);
        if let Some(duck) = &duck {
            println!(
                "  duckdb loaded the Parquet file into memory in {:.1} ms",
                duck.load_seconds * 1e3
            );
        }
        println!(
            "  {:<46} {:>11} {:>10} {:>7}  {:>9} {:>22}",
            "function", "bianzhi ms", "duckdb ms", "ratio", "results", "sum / value"
        );
        let mut mismatches = Vec::new();
        for (name, label, seconds, result) in &ours {
            let theirs = duck.as_ref().and_then(|d| d.cases.get(*name));
            let (duck_ms, ratio) = match theirs {
                Some((duck_seconds, _, _)) => (
                    format!("{:.1}", duck_seconds * 1e3),
                    format!("{:.2}", seconds / duck_seconds),
                ),
                None => ("-".to_string(), "-".to_string()),
            };
            println!(
                "  {label:<46} {:>11.1} {duck_ms:>10} {ratio:>7}  {:>9} {:>22}",
                seconds * 1e3,
                result.0,
                show(result.1)
            );
            if let Some((_, n, v)) = theirs {
                if !agree(*result, (*n, *v)) {
                    mismatches.push(format!(
                        "MISMATCH {name}: bianzhi n {} v {}, duckdb n {n} v {}",
                        result.0,
                        show(result.1),
                        show(*v)
                    ));
                }
            } else if duck.is_some() {
                mismatches.push(format!("MISMATCH {name}: no DuckDB result"));
            }
        }
        println!(
            "  {:<46} {:>11.1} {:>10} {:>7}  {:>9} {:>22}",
            "peer_robust_z(x, true) OVER (), all rows",
            loo_seconds * 1e3,
            "-",
            "-",
            loo_result.0,
            show(loo_result.1)
        );
        println!(
            "  (DuckDB's leave-one-out frames are quadratic; it runs only the {loo_rows}-row case)"
        );
        if duck.is_some() {
            if mismatches.is_empty() {
                println!("  results agree (count, and sum within 1e-9 relative) for every case");
            }
            for line in mismatches {
                println!("{line}");
            }
        }
        anyhow::Ok(())
    })
}
