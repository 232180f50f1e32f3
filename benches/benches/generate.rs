//! Generation throughput: `bianzhi generate` at scale 1 (override with
//! BIANZHI_BENCH_SCALE) into a temporary directory, printing rows per second
//! per table and in total, and the peak resident memory.
//!
//! Run: `cargo bench -p bianzhi-benches --bench generate`.

use std::time::Instant;

use bianzhi_catalog::generator::{generate, GenerateOptions};
use bianzhi_catalog::DataDir;

/// Peak resident set size of this process, from /proc (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let scale: f64 = std::env::var("BIANZHI_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let location = dir.path().join("data");
    let summary = runtime.block_on(async {
        let data = DataDir::open(location.to_str().unwrap_or_default()).await?;
        let started = Instant::now();
        let summary = generate(&data, GenerateOptions { scale, seed: 1 }, &|_, _, _| {}).await?;
        anyhow::Ok((summary, started.elapsed().as_secs_f64()))
    })?;
    let (summary, seconds) = summary;
    println!(
        "generate --scale {scale} --seed 1 on {} threads",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for (table, rows) in &summary.tables {
        println!("  {table:<22} {rows:>12} rows");
    }
    let total = summary.total_rows();
    println!(
        "total {total} rows in {seconds:.1} s = {:.0} rows/s",
        total as f64 / seconds
    );
    if let Some(peak) = peak_rss_mib() {
        println!("peak resident memory {peak:.0} MiB");
    }
    let bytes: u64 = walk_size(&location);
    println!("on disk {:.0} MiB", bytes as f64 / 1024.0 / 1024.0);
    Ok(())
}

fn walk_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
