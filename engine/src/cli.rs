//! Command-line interface of the `bianzhi` binary.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bianzhi_catalog::generator::{generate, GenerateOptions};
use bianzhi_catalog::{DataDir, DEFAULT_DATA_DIR};
use bianzhi_engine::output::OutputFormat;
use bianzhi_engine::reports::REPORTS;
use bianzhi_engine::run::run_script;
use bianzhi_engine::{Engine, EngineOptions};
use clap::{Parser, Subcommand};

/// bianzhi (编制): an analytical database for 机构编制 data.
#[derive(Debug, Parser)]
#[command(name = "bianzhi", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the synthetic Shenzhen dataset into a new data directory.
    Generate {
        /// 1 ≈ Shenzhen: about 2,000 bodies, 300k people, 18M payroll rows.
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        /// Random seed; the same seed and scale give identical tables.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Data directory (path or file:// URL); must not hold generated data yet.
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
    },
    /// Prepare a small demo city (if the directory has none yet) and run the example reports.
    Demo {
        /// Where the demo data lives.
        #[arg(long, env = "BIANZHI_DEMO_DIR", default_value = "./bianzhi-demo")]
        data_dir: String,
        /// Scale of the demo city.
        #[arg(long, default_value_t = 0.05)]
        scale: f64,
    },
    /// Run a SQL script (several statements, comments allowed) and print each result.
    Run {
        /// The script; `-` reads standard input.
        file: String,
        /// Data directory (path or file:// URL).
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
}

pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("BIANZHI_LOG").unwrap_or_else(|_| {
        EnvFilter::new("warn,bianzhi=info,bianzhi_engine=info,bianzhi_catalog=info")
    });
    let _ = tracing_log::LogTracer::init();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Generate {
            scale,
            seed,
            data_dir,
        } => {
            let data = DataDir::open(&data_dir)
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            let bar = progress_bar();
            let report = |step: &str, done: u64, total: u64| {
                if let Some(bar) = &bar {
                    bar.set_length(total);
                    bar.set_position(done);
                    bar.set_message(step.to_string());
                }
            };
            let summary = generate(&data, GenerateOptions { scale, seed }, &report).await?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            for (table, rows) in &summary.tables {
                println!("{table:<22} {rows:>12}");
            }
            println!(
                "generated {} rows at scale {scale}, seed {seed} in {:.1}s into {data_dir}",
                summary.total_rows(),
                summary.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { data_dir, scale } => {
            let data = DataDir::open(&data_dir)
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            if data.row_count("org").await? == 0 {
                eprintln!("generating a demo city at scale {scale} into {data_dir} …");
                let summary =
                    generate(&data, GenerateOptions { scale, seed: 1 }, &|_, _, _| {}).await?;
                eprintln!(
                    "generated {} rows in {:.1}s",
                    summary.total_rows(),
                    summary.seconds
                );
            }
            let engine = Engine::open(&data_dir).await?;
            let ctx = engine.session()?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for (name, sql) in REPORTS {
                writeln!(out, "== sql/reports/{name}")?;
                run_script(&ctx, name, sql, OutputFormat::Table, &mut out).await?;
            }
            writeln!(
                out,
                "Run your own: bianzhi run FILE.sql --data-dir {data_dir}"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            data_dir,
            format,
        } => {
            let (name, text) = read_script(&file)?;
            let engine = Engine::open_with(&data_dir, EngineOptions::default())
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            let ctx = engine.session()?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            run_script(&ctx, &name, &text, format, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_script(file: &str) -> Result<(String, String)> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the script from standard input")?;
        Ok(("<stdin>".to_string(), text))
    } else {
        let path = PathBuf::from(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok((file.to_string(), text))
    }
}

/// A progress bar on a terminal; nothing when stderr is not one.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(1);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg:28} [{bar:30}] {pos}/{len} {elapsed}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}
