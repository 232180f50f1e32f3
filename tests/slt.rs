//! The SQL logic test harness: every `tests/slt/**/*.slt` file runs against a fresh
//! bianzhi per engine, labelled for `skipif`/`onlyif`:
//!
//! - `embedded`: a session in this process;
//! - `pgwire`: a server on 127.0.0.1:0 in this process, queried with
//!   tokio-postgres (extended protocol, binary results).
//!
//! Usage: `cargo test --test slt [-- [--complete] [FILTER]]`. `--complete` rewrites
//! the files with the results the embedded engine gives: read every changed value
//! before committing.

#[path = "harness/embedded.rs"]
mod embedded;
#[path = "harness/value.rs"]
mod value;
#[path = "harness/wire.rs"]
mod wire;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sqllogictest::{default_column_validator, default_normalizer, default_validator, Runner};

/// The .slt files under `dir`, except fixtures (which are only included).
fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "fixtures") {
                slt_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "slt") {
            out.push(path);
        }
    }
}

/// Whitespace-insensitive form of SQL text, for comparing a report with its twin.
fn normalize(sql: &str) -> String {
    sql.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(';')
        .to_string()
}

/// Every report in sql/reports must have a twin in tests/slt/reports holding its
/// exact text, so the checked results are results of the shipped report.
fn check_report_twins(root: &Path) -> Vec<String> {
    let reports = root.join("../../sql/reports");
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(&reports) else {
        return vec![format!("cannot read {}", reports.display())];
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let twin = root.join("reports").join(format!("{stem}.slt"));
        let (Ok(report), Ok(slt)) = (
            std::fs::read_to_string(&path),
            std::fs::read_to_string(&twin),
        ) else {
            problems.push(format!(
                "sql/reports/{stem}.sql has no twin tests/slt/reports/{stem}.slt"
            ));
            continue;
        };
        if !normalize(&slt).contains(&normalize(&report)) {
            problems.push(format!(
                "tests/slt/reports/{stem}.slt does not contain the text of sql/reports/{stem}.sql"
            ));
        }
    }
    problems
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slt");
    let mut files = Vec::new();
    slt_files(&root, &mut files);
    files.retain(|f| {
        filters.is_empty()
            || filters
                .iter()
                .any(|flt| f.to_string_lossy().contains(flt.as_str()))
    });

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failures = check_report_twins(&root);
    for check in [value::self_check(), wire::self_check()] {
        if let Err(problem) = check {
            failures.push(problem);
        }
    }
    for problem in &failures {
        println!("FAILED   {problem}");
    }
    let engines: Vec<&str> = if complete {
        vec!["embedded"]
    } else {
        vec!["embedded", "pgwire"]
    };
    for file in &files {
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for engine in &engines {
            let outcome = runtime.block_on(async {
                if *engine == "pgwire" {
                    let mut runner = Runner::new(wire::Wire::new);
                    runner.add_label("pgwire");
                    runner
                        .run_file_async(file)
                        .await
                        .map_err(|e| e.display(true).to_string())
                } else {
                    let mut runner = Runner::new(embedded::Embedded::new);
                    runner.add_label("embedded");
                    if complete {
                        runner
                            .update_test_file(
                                file,
                                " ",
                                default_validator,
                                default_normalizer,
                                default_column_validator,
                            )
                            .await
                            .map_err(|e| e.to_string())
                    } else {
                        runner
                            .run_file_async(file)
                            .await
                            .map_err(|e| e.display(true).to_string())
                    }
                }
            });
            match outcome {
                Ok(()) => println!("ok       {engine:<9} {name}"),
                Err(e) => {
                    println!("FAILED   {engine:<9} {name}\n{e}");
                    failures.push(format!("{engine} {name}"));
                }
            }
        }
    }
    if failures.is_empty() {
        println!(
            "slt: {} files passed on {}",
            files.len(),
            engines.join(" and ")
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "slt: {} of {} runs failed: {}",
            failures.len(),
            files.len(),
            failures.join(", ")
        );
        ExitCode::FAILURE
    }
}
