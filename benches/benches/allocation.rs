//! Allocation: the `region_allocation` view over generated data (scale 1
//! unless BIANZHI_BENCH_SCALE says otherwise, or an existing data directory in
//! BIANZHI_BENCH_DATA), compared in the same run with the same view written in
//! plain SQL on DuckDB over the same Parquet files; and the inequality
//! aggregates over 1M rows in 1,000 groups.
//!
//! Run: `cargo bench -p bianzhi-benches --bench allocation` (needs
//! `pip install duckdb` for the comparison; it is skipped with a note if not).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bianzhi_catalog::generator::{generate, GenerateOptions};
use bianzhi_catalog::DataDir;
use bianzhi_engine::engine::Engine;
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

const RUNS: usize = 5;

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

async fn time_query(ctx: &SessionContext, sql: &str) -> anyhow::Result<(f64, usize)> {
    let mut seconds = Vec::new();
    let mut rows = 0;
    // One warm-up run: the first scan also loads the Delta logs.
    for run in 0..=RUNS {
        let started = Instant::now();
        let batches = ctx.sql(sql).await?.collect().await?;
        let elapsed = started.elapsed().as_secs_f64();
        rows = batches.iter().map(RecordBatch::num_rows).sum();
        if run > 0 {
            seconds.push(elapsed);
        }
    }
    Ok((median(seconds), rows))
}

fn duckdb_seconds(data: &Path) -> Option<(f64, usize)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb/region_allocation.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(data)
        .arg(RUNS.to_string())
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "DuckDB comparison skipped: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    let seconds = words.get(1)?.parse().ok()?;
    let rows = words.get(3)?.parse().ok()?;
    Some((seconds, rows))
}

async fn aggregates() -> anyhow::Result<()> {
    let rows = 1_000_000i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("g", DataType::Int64, false),
        Field::new("quota", DataType::Float64, false),
        Field::new("population", DataType::Float64, false),
    ]));
    let mut batches = Vec::new();
    for start in (0..rows).step_by(100_000) {
        let ids: Vec<i64> = (start..start + 100_000).collect();
        let groups = Int64Array::from_iter_values(ids.iter().map(|i| i % 1000));
        // Deterministic, uneven values: quota 1..=97, population 1,000..=60,000.
        let quota = Float64Array::from_iter_values(ids.iter().map(|i| (i * 7919 % 97 + 1) as f64));
        let population = Float64Array::from_iter_values(
            ids.iter().map(|i| (i * 104_729 % 59_001 + 1000) as f64),
        );
        batches.push(RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(groups), Arc::new(quota), Arc::new(population)],
        )?);
    }
    let ctx = SessionContext::new();
    let mut ctx_registry = ctx.clone();
    bianzhi_udfs::register_all(&mut ctx_registry)?;
    let table = MemTable::try_new(schema, vec![batches])?;
    ctx.register_table("t", Arc::new(table))?;
    println!("aggregates over {rows} rows in 1,000 groups (median of {RUNS}):");
    for call in [
        "gini(quota / population, population)",
        "theil_t(quota, population)",
        "theil_l(quota, population)",
        "hoover(quota, population)",
        "cv(quota / population, population)",
        "stddev(quota)",
    ] {
        let sql = format!("SELECT g, {call} FROM t GROUP BY g");
        let (seconds, _) = time_query(&ctx, &sql).await?;
        println!(
            "  {call:<40} {:>8.1} ms  {:>6.1} M rows/s",
            seconds * 1e3,
            rows as f64 / seconds / 1e6
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let temporary = tempfile::tempdir()?;
    let data: PathBuf = match std::env::var("BIANZHI_BENCH_DATA") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            let scale: f64 = std::env::var("BIANZHI_BENCH_SCALE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1.0);
            let location = temporary.path().join("data");
            println!("generating scale {scale} into {}", location.display());
            runtime.block_on(async {
                let dir = DataDir::open(location.to_str().context("path")?).await?;
                generate(&dir, GenerateOptions { scale, seed: 1 }, &|_, _, _| {}).await?;
                anyhow::Ok(())
            })?;
            location
        }
    };
    runtime.block_on(async {
        let engine = Engine::open(data.to_str().context("path")?).await?;
        let ctx = engine.session()?;
        println!(
            "region_allocation over {} (median of {RUNS}):",
            data.display()
        );
        let (ours, rows) = time_query(&ctx, "SELECT * FROM region_allocation").await?;
        println!(
            "  bianzhi  view, all years and types   {:>8.1} ms  {rows} rows",
            ours * 1e3
        );
        let (one_year, one_rows) =
            time_query(&ctx, "SELECT * FROM region_allocation(2024)").await?;
        println!(
            "  bianzhi  region_allocation(2024)     {:>8.1} ms  {one_rows} rows",
            one_year * 1e3
        );
        let (summary, summary_rows) =
            time_query(&ctx, "SELECT * FROM region_allocation_summary").await?;
        println!(
            "  bianzhi  region_allocation_summary   {:>8.1} ms  {summary_rows} rows",
            summary * 1e3
        );
        match duckdb_seconds(&data) {
            Some((duck, duck_rows)) => {
                println!(
                    "  duckdb   same view in plain SQL      {:>8.1} ms  {duck_rows} rows",
                    duck * 1e3
                );
                println!("  ratio bianzhi / duckdb = {:.2}", ours / duck);
                if duck_rows != rows {
                    println!("  WARNING: row counts differ ({rows} vs {duck_rows})");
                }
            }
            None => println!("  duckdb comparison not run (pip install duckdb)"),
        }
        aggregates().await
    })
}
