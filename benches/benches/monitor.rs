//! Monitoring: the eleven rules of `sql/views/monitor_*.sql` over a whole
//! generated city (scale 1 unless BIANZHI_BENCH_SCALE says otherwise, or the
//! existing data directory in BIANZHI_BENCH_DATA; scale 1 has ≈18M payroll
//! rows), compared in the same run with the same rule SQL on DuckDB over the
//! same Parquet files (benches/duckdb/monitor.py: the view files as they are,
//! mom_jump_z written out with DuckDB window aggregates).
//!
//! It times, each the median of BIANZHI_BENCH_RUNS runs (default 3):
//! - evaluate: what `bianzhi monitor` computes, without writing — the as-of
//!   month, then every rule view's rows up to it, merged into alerts
//!   (`monitor::resolve_as_of` and `monitor::evaluate_rule`), after one
//!   warm-up run; also per rule;
//! - monitor: `monitor::run_monitor`, the full run (read `alert`, evaluate,
//!   one Delta commit of the new `alert`), each run on a fresh copy of the
//!   data directory, so the input is never modified (opening the engine is
//!   timed apart);
//! - DuckDB: the same rule SQL, as-of month included, rows fetched and merged
//!   into alert keys in Python, after one warm-up run.
//!
//! It prints the ratios and the alerts (keys: rule, org, person, month) per
//! rule of both engines, with a MISMATCH line for every rule where they differ.
//!
//! Run: `cargo bench -p bianzhi-benches --bench monitor` (needs
//! `pip install duckdb` for the comparison; it is skipped with a note if not).
//! At scale 1 on the 2-core machine a run takes minutes; use
//! BIANZHI_BENCH_DATA=/path/to/dir to skip generating.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use bianzhi_catalog::generator::{generate, GenerateOptions};
use bianzhi_catalog::DataDir;
use bianzhi_engine::engine::Engine;
use bianzhi_engine::monitor::{evaluate_rule, resolve_as_of, run_monitor, MONITOR_RULES};
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds.get(seconds.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(seconds: f64) -> String {
    format!("{:.1}", seconds * 1e3)
}

/// One evaluation: the as-of month, each rule's alerts and seconds, the total.
struct Evaluation {
    as_of: String,
    rules: Vec<(usize, f64)>,
    seconds: f64,
}

async fn evaluate_all(ctx: &SessionContext) -> anyhow::Result<Evaluation> {
    let started = Instant::now();
    let as_of = resolve_as_of(ctx, None).await?;
    let mut rules = Vec::new();
    for rule in MONITOR_RULES {
        let rule_started = Instant::now();
        let findings = evaluate_rule(ctx, rule, as_of).await?;
        rules.push((findings.len(), rule_started.elapsed().as_secs_f64()));
    }
    Ok(Evaluation {
        as_of: as_of.map_or_else(|| "-".to_string(), |d| d.to_string()),
        rules,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

async fn open_copy(data: &Path, copy: &Path) -> anyhow::Result<(Engine, f64)> {
    copy_dir(data, copy).with_context(|| format!("copying {}", data.display()))?;
    let started = Instant::now();
    let engine = Engine::open(copy.to_str().context("path")?).await?;
    Ok((engine, started.elapsed().as_secs_f64()))
}

/// Rows of external_roster, and of its payroll feed (the rules' 发薪 input).
async fn roster_rows(ctx: &SessionContext) -> anyhow::Result<(i64, i64)> {
    let batches = ctx
        .sql(
            "SELECT count(*), sum(CASE WHEN source = '财政统发工资' THEN 1 ELSE 0 END) \
             FROM external_roster",
        )
        .await?
        .collect()
        .await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .context("no count")?;
    let value = |index: usize| -> anyhow::Result<i64> {
        let column = cast(batch.column(index), &DataType::Int64)?;
        let column = column
            .as_any()
            .downcast_ref::<Int64Array>()
            .context("count is not an integer")?;
        Ok(if column.is_valid(0) {
            column.value(0)
        } else {
            0
        })
    };
    Ok((value(0)?, value(1)?))
}

/// What benches/duckdb/monitor.py printed.
#[derive(Default)]
struct DuckRun {
    as_of: String,
    /// code → (view rows, alert keys, seconds).
    rules: BTreeMap<String, (usize, usize, f64)>,
    seconds: f64,
}

fn duckdb_run(data: &Path, runs: usize) -> Option<DuckRun> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb/monitor.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(data).arg(runs.to_string());
    for rule in MONITOR_RULES {
        command.arg(format!("{}={}", rule.code, rule.view));
    }
    let output = match command.output() {
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
    let mut run = DuckRun::default();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["as_of", date] => run.as_of = (*date).to_string(),
            ["rule", code, "rows", rows, "keys", keys, "seconds", seconds] => {
                match (rows.parse(), keys.parse(), seconds.parse()) {
                    (Ok(rows), Ok(keys), Ok(seconds)) => {
                        run.rules.insert((*code).to_string(), (rows, keys, seconds));
                    }
                    _ => println!("  unreadable duckdb line: {line}"),
                }
            }
            ["total_seconds", seconds, ..] => run.seconds = seconds.parse().unwrap_or(f64::NAN),
            _ => println!("  duckdb: {line}"),
        }
    }
    Some(run)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let runs: usize = std::env::var("BIANZHI_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let temporary = tempfile::tempdir()?;
    let data: PathBuf = match std::env::var("BIANZHI_BENCH_DATA") {
        Ok(dir) => PathBuf::from(dir.strip_prefix("file://").unwrap_or(&dir)),
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
        // Evaluate on the first copy (evaluation writes nothing), then the
        // first monitor run on it; every later monitor run on a fresh copy.
        let mut opens = Vec::new();
        let mut monitors = Vec::new();
        let mut monitor_report = None;
        let copy = temporary.path().join("copy-0");
        let (engine, open_seconds) = open_copy(&data, &copy).await?;
        opens.push(open_seconds);
        let ctx = engine.session()?;
        let (roster, payroll) = roster_rows(&ctx).await?;
        println!(
            "monitor over {} (external_roster {roster} rows, payroll {payroll}; \
             median of {runs} runs):",
            data.display()
        );
        let mut evaluations = Vec::new();
        for run in 0..=runs {
            let evaluation = evaluate_all(&ctx).await?;
            if run > 0 {
                evaluations.push(evaluation);
            }
        }
        for run in 0..runs {
            let (engine, copy) = if run == 0 {
                (engine.clone(), copy.clone())
            } else {
                let copy = temporary.path().join(format!("copy-{run}"));
                let (engine, open_seconds) = open_copy(&data, &copy).await?;
                opens.push(open_seconds);
                (engine, copy)
            };
            let started = Instant::now();
            let report = run_monitor(&engine, None).await?;
            monitors.push(started.elapsed().as_secs_f64());
            monitor_report = Some(report);
            drop(engine);
            std::fs::remove_dir_all(&copy)?;
        }
        let last = evaluations.last().context("no evaluation")?;
        let evaluate_seconds = median(evaluations.iter().map(|e| e.seconds).collect());
        let monitor_seconds = median(monitors);
        let alerts: usize = last.rules.iter().map(|(keys, _)| keys).sum();
        println!("  as of {}", last.as_of);
        println!(
            "  bianzhi  open the data directory        {:>10} ms",
            ms(median(opens))
        );
        println!(
            "  bianzhi  evaluate (as-of + {:>2} rules)     {:>10} ms  {alerts} alerts",
            MONITOR_RULES.len(),
            ms(evaluate_seconds)
        );
        let total_alerts = monitor_report.as_ref().map_or(0, |r| r.total_alerts);
        println!(
            "  bianzhi  monitor (evaluate + commit)     {:>10} ms  {total_alerts} rows in alert",
            ms(monitor_seconds)
        );
        let mut mismatches = Vec::new();
        if let Some(report) = &monitor_report {
            for (summary, (keys, _)) in report.rules.iter().zip(&last.rules) {
                if summary.new + summary.still_open != *keys {
                    mismatches.push(format!(
                        "MISMATCH {}: run_monitor raised {} new + {} open, evaluate found {keys}",
                        summary.code, summary.new, summary.still_open
                    ));
                }
            }
        }
        let duck = duckdb_run(&data, runs);
        match &duck {
            Some(duck) => {
                let duck_alerts: usize = duck.rules.values().map(|(_, keys, _)| keys).sum();
                println!(
                    "  duckdb   same rule SQL                   {:>10} ms  {duck_alerts} alerts",
                    ms(duck.seconds)
                );
                println!(
                    "  ratio evaluate bianzhi / duckdb = {:.2}",
                    evaluate_seconds / duck.seconds
                );
                println!(
                    "  ratio monitor  bianzhi / duckdb = {:.2}",
                    monitor_seconds / duck.seconds
                );
                if duck.as_of != last.as_of {
                    mismatches.push(format!(
                        "MISMATCH as-of month: bianzhi {}, duckdb {}",
                        last.as_of, duck.as_of
                    ));
                }
            }
            None => println!("  duckdb comparison not run"),
        }
        println!(
            "  {:<20} {:>14} {:>13} {:>12} {:>11} {:>10} {:>7}",
            "rule", "bianzhi alerts", "duckdb alerts", "duckdb rows", "bianzhi ms", "duckdb ms",
            "ratio"
        );
        for (index, rule) in MONITOR_RULES.iter().enumerate() {
            let (keys, _) = last.rules.get(index).copied().unwrap_or_default();
            let seconds = median(evaluations.iter().filter_map(|e| e.rules.get(index)).map(|r| r.1).collect());
            let theirs = duck.as_ref().and_then(|d| d.rules.get(rule.code));
            let (duck_keys, duck_rows, duck_ms, ratio) = match theirs {
                Some((rows, duck_keys, duck_seconds)) => (
                    duck_keys.to_string(),
                    rows.to_string(),
                    ms(*duck_seconds),
                    format!("{:.2}", seconds / duck_seconds),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            println!(
                "  {:<20} {keys:>14} {duck_keys:>13} {duck_rows:>12} {:>11} {duck_ms:>10} {ratio:>7}",
                rule.code,
                ms(seconds)
            );
            match theirs {
                Some((_, duck_keys, _)) if *duck_keys != keys => mismatches.push(format!(
                    "MISMATCH {}: bianzhi {keys} alerts, duckdb {duck_keys}",
                    rule.code
                )),
                None if duck.is_some() => {
                    mismatches.push(format!("MISMATCH {}: no DuckDB result", rule.code))
                }
                _ => {}
            }
        }
        if duck.is_some() && mismatches.is_empty() {
            println!("  alerts per rule agree");
        }
        for line in mismatches {
            println!("{line}");
        }
        anyhow::Ok(())
    })
}
