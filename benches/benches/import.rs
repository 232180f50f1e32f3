//! Import: a CSV of BIANZHI_BENCH_ROWS (default 1,000,000) external_roster
//! rows (Chinese text, dates, amounts, code columns; deterministic) loaded by
//! `bianzhi import` (library call: read, check every value and code, one
//! Delta commit) into a fresh data directory, against PostgreSQL 15
//! `COPY … FROM` the same file into an equivalent table (server-side, as
//! superuser, no indexes) and DuckDB `read_csv` → Parquet, in the same run.
//! Prints rows/s, MB/s and the ratios.
//!
//! Run: `cargo bench -p bianzhi-benches --bench import` (PostgreSQL through
//! `su postgres -c psql`, DuckDB through `python3 -c 'import duckdb'`; each is
//! skipped with a note when missing).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use bianzhi_engine::engine::Engine;
use bianzhi_engine::import::{import, ImportMode, ImportOptions};

const RUNS: usize = 3;

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

/// The CSV: header with the Chinese column names, `rows` rows.
fn write_csv(path: &Path, rows: usize) -> anyhow::Result<()> {
    let sources = ["财政统发工资", "社会保险"];
    let items = ["应发工资", "养老保险缴费"];
    let names = [
        "张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强",
    ];
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        file,
        "数据来源,所属期,公民身份号码摘要,姓名,发薪或缴费单位标识,项目,金额(元),事件日期"
    )?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for row in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let kind = row % 2;
        writeln!(
            file,
            "{},{}-{:02}-01,{:016x}{:016x},{},{},{},{}.{:02},",
            sources[kind],
            2020 + (row / 12) % 5,
            row % 12 + 1,
            state,
            state.rotate_left(17),
            names[(state % 8) as usize],
            1000 + state % 2500,
            items[kind],
            3000 + state % 20000,
            state % 100
        )?;
    }
    file.flush()?;
    Ok(())
}

/// Median seconds of PostgreSQL's COPY of the file into a fresh table.
fn postgres_seconds(csv: &Path) -> anyhow::Result<Option<f64>> {
    let reachable = Command::new("su")
        .args(["postgres", "-c", "psql -XAtc 'SELECT 1'"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !reachable {
        println!("  postgres comparison not run (su postgres -c psql failed)");
        return Ok(None);
    }
    let mut script = String::new();
    for _ in 0..RUNS {
        script.push_str(&format!(
            "DROP TABLE IF EXISTS bianzhi_bench_roster;\n\
             CREATE TABLE bianzhi_bench_roster (source text NOT NULL, period date NOT NULL, \
             id_hash text NOT NULL, person_name text, org_id bigint, item text NOT NULL, \
             amount numeric(12,2), event_date date);\n\
             \\timing on\n\
             COPY bianzhi_bench_roster FROM '{}' WITH (FORMAT csv, HEADER);\n\
             \\timing off\n",
            csv.display()
        ));
    }
    script.push_str("DROP TABLE bianzhi_bench_roster;\n");
    let script_path = csv.with_extension("sql");
    std::fs::write(&script_path, script)?;
    let output = Command::new("su")
        .args([
            "postgres",
            "-c",
            &format!("psql -XAt -v ON_ERROR_STOP=1 -f {}", script_path.display()),
        ])
        .output()?;
    if !output.status.success() {
        println!(
            "  postgres comparison failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Ok(None);
    }
    let times: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("Time: "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ms| ms / 1e3)
        .collect();
    Ok((!times.is_empty()).then(|| median(times)))
}

/// Median seconds of DuckDB reading the CSV and writing one Parquet file.
fn duckdb_seconds(csv: &Path, out: &Path) -> Option<f64> {
    let program = r#"
import sys, time, duckdb
times = []
for _ in range(int(sys.argv[3])):
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute("COPY (SELECT * FROM read_csv(?, header=true)) TO '" + sys.argv[2].replace("'", "''") + "' (FORMAT parquet)", [sys.argv[1]])
    times.append(time.perf_counter() - started)
    con.close()
times.sort()
print(times[len(times) // 2])
"#;
    let output = Command::new("python3")
        .args(["-c", program])
        .arg(csv)
        .arg(out)
        .arg(RUNS.to_string())
        .output()
        .ok()?;
    if !output.status.success() {
        println!(
            "  duckdb comparison not run: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rows: usize = std::env::var("BIANZHI_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let directory = tempfile::Builder::new()
        .prefix("bianzhi-import")
        .tempdir_in("/tmp")?;
    Command::new("chmod")
        .arg("a+rx")
        .arg(directory.path())
        .status()?;
    let csv = directory.path().join("roster.csv");
    write_csv(&csv, rows)?;
    Command::new("chmod").arg("a+r").arg(&csv).status()?;
    let megabytes = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    println!("import of {rows} external_roster rows, {megabytes:.1} MB of CSV:");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut seconds = Vec::new();
    for run in 0..RUNS {
        let data = directory.path().join(format!("data-{run}"));
        let imported = runtime.block_on(async {
            let engine = Engine::open(data.to_str().context("path")?).await?;
            let options = ImportOptions {
                table: "external_roster".into(),
                file: csv.clone(),
                format: None,
                encoding: None,
                sheet: None,
                header_row: None,
                mode: ImportMode::Append,
                max_errors: 100,
            };
            let started = Instant::now();
            let report = import(&engine, &options).await?;
            anyhow::Ok((started.elapsed().as_secs_f64(), report.rows))
        })?;
        anyhow::ensure!(imported.1 as usize == rows, "imported {} rows", imported.1);
        seconds.push(imported.0);
        std::fs::remove_dir_all(&data)?;
    }
    let ours = median(seconds);
    let line = |name: &str, s: f64| {
        println!(
            "  {name:<34} {s:>8.2} s  {:>10.0} rows/s  {:>6.1} MB/s",
            rows as f64 / s,
            megabytes / s
        );
    };
    line("bianzhi import (checked, 1 commit)", ours);
    if let Some(pg) = postgres_seconds(&csv)? {
        line("postgres COPY FROM (csv, header)", pg);
        println!("  ratio postgres / bianzhi = {:.2}", pg / ours);
    }
    if let Some(duck) = duckdb_seconds(&csv, &directory.path().join("roster.parquet")) {
        line("duckdb read_csv -> parquet", duck);
        println!("  ratio duckdb / bianzhi = {:.2}", duck / ours);
    }
    Ok(())
}
