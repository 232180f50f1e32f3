//! Command-line interface of the `bianzhi` binary.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bianzhi_catalog::generator::{generate, GenerateOptions};
use bianzhi_catalog::{DataDir, DEFAULT_DATA_DIR};
use bianzhi_engine::monitor;
use bianzhi_engine::output::OutputFormat;
use bianzhi_engine::reports::REPORTS;
use bianzhi_engine::run::{run_script, run_script_to_files};
use bianzhi_engine::server::config::{ConfigFile, Overrides, ServerConfig};
use bianzhi_engine::server::scram::Verifier;
use bianzhi_engine::server::Server;
use bianzhi_engine::{Engine, EngineOptions, Session, SessionIdentity, Settings};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// bianzhi (编制): an analytical database for 机构编制 data.
#[derive(Debug, Parser)]
#[command(name = "bianzhi", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options of `bianzhi serve` (each also from a BIANZHI_* variable; flags win over
/// the environment, which wins over the config file).
#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (see config/example.toml).
    #[arg(long, env = "BIANZHI_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (path or file:// URL).
    #[arg(long, env = "BIANZHI_DATA_DIR")]
    data_dir: Option<String>,
    /// Address to listen on; port 0 picks a free port, printed on start.
    #[arg(long, env = "BIANZHI_LISTEN")]
    listen: Option<String>,
    /// Write the bound address to this file once listening.
    #[arg(long, env = "BIANZHI_ADDRESS_FILE")]
    address_file: Option<PathBuf>,
    /// Maximum simultaneous connections.
    #[arg(long, env = "BIANZHI_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Authentication: scram-sha-256 or trust (loopback only).
    #[arg(long, env = "BIANZHI_AUTH")]
    auth: Option<String>,
    /// TLS certificate (PEM).
    #[arg(long, env = "BIANZHI_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "BIANZHI_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Default statement_timeout of sessions, e.g. 30s.
    #[arg(long, env = "BIANZHI_STATEMENT_TIMEOUT")]
    statement_timeout: Option<String>,
    /// Memory a session's query may use, e.g. 2GiB.
    #[arg(long, env = "BIANZHI_QUERY_MEMORY")]
    query_memory: Option<String>,
    /// Evaluate the monitoring rules on this schedule, e.g. 1h.
    #[arg(long, env = "BIANZHI_MONITOR_EVERY")]
    monitor_every: Option<String>,
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
    /// Prepare a small demo city (if the directory has none yet) and serve it to psql and BI tools.
    Demo {
        /// Where the demo data lives.
        #[arg(long, env = "BIANZHI_DEMO_DIR", default_value = "./bianzhi-demo")]
        data_dir: String,
        /// Scale of the demo city.
        #[arg(long, default_value_t = 0.05)]
        scale: f64,
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: String,
        /// Run the example reports and exit instead of serving.
        #[arg(long)]
        reports: bool,
    },
    /// Serve the data directory over the PostgreSQL wire protocol.
    Serve(ServeArgs),
    /// Make a SCRAM-SHA-256 verifier for a user (password read from standard input).
    Password {
        /// The user name.
        user: String,
        /// PBKDF2 iterations.
        #[arg(long, default_value_t = bianzhi_engine::server::scram::DEFAULT_ITERATIONS)]
        iterations: u32,
    },
    /// Evaluate the monitoring rules (sql/views/monitor_*.sql) and bring the alert table up to date.
    Monitor {
        /// Data directory (path or file:// URL).
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
        /// Evaluate months up to this one (YYYY-MM-DD); default the latest payroll month.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        /// Print each rule's precision and recall against generator.planted instead (writes nothing).
        #[arg(long)]
        evaluate: bool,
    },
    /// Export a table, or the rows of a query, to a CSV, Parquet or Excel file (docs/data.md).
    Export {
        /// A table name (`org`, `generator.planted`) or a query returning rows.
        source: String,
        /// File format; from --out's extension (.parquet, .xlsx, else CSV) when not given.
        #[arg(long, value_enum)]
        format: Option<bianzhi_engine::export::ExportFormat>,
        /// The file to write (replaced only once complete); standard output when not given.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Start a CSV file with a UTF-8 byte order mark (for Excel on Windows).
        #[arg(long)]
        bom: bool,
        /// Data directory (path or file:// URL).
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
    },
    /// Run a SQL script (several statements, comments allowed) and print each result.
    Run {
        /// The script; `-` reads standard input.
        file: String,
        /// Data directory (path or file:// URL).
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
        /// Output format on standard output.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Write the result sets to files instead, in the format of the extension
        /// (.csv, .parquet, .xlsx); several result sets go to FILE-1, FILE-2 ….
        #[arg(long, conflicts_with = "format")]
        out: Option<PathBuf>,
    },
    /// Load a CSV/TSV (UTF-8 or GBK), Excel, JSON or Parquet file into a table: every value checked, one commit or nothing.
    Import {
        /// The table (`external_roster`, `person`, …).
        table: String,
        /// The file to load.
        file: PathBuf,
        /// File format; taken from the file name when not given.
        #[arg(long, value_enum)]
        format: Option<bianzhi_engine::import::ImportFormat>,
        /// Sheet of a workbook; the first one when not given.
        #[arg(long)]
        sheet: Option<String>,
        /// Text encoding of a CSV/TSV; detected (UTF-8, else GB18030) when not given.
        #[arg(long, value_enum)]
        encoding: Option<bianzhi_engine::import::TextEncoding>,
        /// Append to the table, or replace all its rows.
        #[arg(long, value_enum, default_value_t = bianzhi_engine::import::ImportMode::Append)]
        mode: bianzhi_engine::import::ImportMode,
        /// 1-based row holding the column names; found among the first 10 rows when not given.
        #[arg(long)]
        header_row: Option<u64>,
        /// Stop after this many rejected values.
        #[arg(long, default_value_t = 100)]
        max_errors: usize,
        /// Data directory (path or file:// URL).
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
    },
    /// Rewrite each table's small data files into large ones, one commit per table (rows unchanged).
    Compact {
        /// Tables to compact; every table when none are named.
        tables: Vec<String>,
        /// Target file size in MiB (default 100).
        #[arg(long)]
        target_mib: Option<u64>,
        /// Data directory (path or file:// URL).
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
    },
    /// Delete data files that no version within the retention period needs (time travel cannot reach past it).
    Vacuum {
        /// Tables to vacuum; every table when none are named.
        tables: Vec<String>,
        /// Keep what versions of the last N hours need (default: the table's setting, 7 days).
        #[arg(long)]
        retain_hours: Option<u32>,
        /// Allow a retention shorter than the table's setting.
        #[arg(long)]
        force: bool,
        /// List what would be deleted without deleting.
        #[arg(long)]
        dry_run: bool,
        /// Data directory (path or file:// URL).
        #[arg(long, env = "BIANZHI_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: String,
    },
    /// Measure the text functions on a labelled duty-text set (see docs/text.md).
    EvalText {
        /// Directory with duties.tsv, pairs.tsv and queries.tsv.
        #[arg(long, env = "BIANZHI_EVAL_DIR", default_value = "../shared/eval")]
        eval_dir: PathBuf,
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
        Command::Demo {
            data_dir,
            scale,
            listen,
            reports,
        } => {
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
            if reports {
                let engine = Engine::open(&data_dir).await?;
                let session =
                    Session::new(&engine, Settings::default(), SessionIdentity::default())?;
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                for (name, sql) in REPORTS {
                    writeln!(out, "== sql/reports/{name}")?;
                    run_script(&session, name, sql, OutputFormat::Table, &mut out).await?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let args = ServeArgs {
                config: None,
                data_dir: Some(data_dir),
                listen: Some(listen),
                address_file: None,
                max_connections: None,
                auth: Some("trust".into()),
                tls_cert: None,
                tls_key: None,
                statement_timeout: None,
                query_memory: None,
                monitor_every: None,
            };
            serve(args).await
        }
        Command::Import {
            table,
            file,
            format,
            sheet,
            encoding,
            mode,
            header_row,
            max_errors,
            data_dir,
        } => {
            let engine = Engine::open(&data_dir)
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            let options = bianzhi_engine::import::ImportOptions {
                table,
                file,
                format,
                encoding,
                sheet,
                header_row,
                mode,
                max_errors,
            };
            match bianzhi_engine::import::import(&engine, &options).await {
                Ok(report) => {
                    let mut how = vec![format!("header on row {}", report.header_row)];
                    if let Some(sheet) = &report.sheet {
                        how.push(format!("sheet \"{sheet}\""));
                    }
                    if let Some(encoding) = report.encoding {
                        how.push(format!("read as {}", encoding.label()));
                    }
                    println!(
                        "imported {} rows into {} (version {}; {})",
                        report.rows,
                        report.table,
                        report
                            .version
                            .map_or_else(|| "-".to_string(), |v| v.to_string()),
                        how.join(", ")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Compact {
            tables,
            target_mib,
            data_dir,
        } => {
            let data = DataDir::open(&data_dir)
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            let target = target_mib.map(|mib| mib.saturating_mul(1024 * 1024));
            for done in bianzhi_engine::maintenance::compact(&data, &tables, target).await? {
                println!(
                    "{:<28} {:>5} files -> {:>3}  {}",
                    done.table,
                    done.files_removed,
                    done.files_added,
                    done.version
                        .map_or_else(|| "unchanged".to_string(), |v| format!("version {v}"))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Vacuum {
            tables,
            retain_hours,
            force,
            dry_run,
            data_dir,
        } => {
            let data = DataDir::open(&data_dir)
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            let done =
                bianzhi_engine::maintenance::vacuum(&data, &tables, retain_hours, force, dry_run)
                    .await?;
            for table in done {
                println!(
                    "{:<28} {:>5} files {}",
                    table.table,
                    table.files,
                    if table.dry_run {
                        "would be deleted"
                    } else {
                        "deleted"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve(args).await,
        Command::Password { user, iterations } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                anyhow::bail!("empty password: type it on standard input, e.g. `echo 'secret' | bianzhi password {user}`");
            }
            let verifier = Verifier::generate(password, iterations).map_err(anyhow::Error::msg)?;
            println!(
                "[[auth.users]]\nname = {user:?}\npassword = {:?}",
                verifier.encode()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor {
            data_dir,
            as_of,
            evaluate,
        } => {
            let engine = Engine::open_with(&data_dir, EngineOptions::default())
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            if evaluate {
                let (as_of, quality) = monitor::evaluate(&engine, as_of).await?;
                print!("{}", monitor::format_quality(as_of, &quality));
                return Ok(ExitCode::SUCCESS);
            }
            let report = monitor::run_monitor(&engine, as_of).await?;
            println!(
                "as of {}",
                report
                    .as_of
                    .map_or_else(|| "-".to_string(), |d| d.to_string())
            );
            println!(
                "{:<20} {:>6} {:>10} {:>9}  name",
                "rule", "new", "still open", "resolved"
            );
            for rule in &report.rules {
                println!(
                    "{:<20} {:>6} {:>10} {:>9}  {}",
                    rule.code, rule.new, rule.still_open, rule.resolved, rule.name
                );
            }
            println!("{} alerts in the alert table", report.total_alerts);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            source,
            format,
            out,
            bom,
            data_dir,
        } => {
            use bianzhi_engine::export::{export, ExportFormat, ExportOptions};
            let engine = Engine::open(&data_dir)
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            let format = format.unwrap_or_else(|| {
                out.as_deref()
                    .map_or(ExportFormat::Csv, ExportFormat::for_path)
            });
            let options = ExportOptions {
                source,
                format,
                out,
                bom,
            };
            // Interrupted, the export is dropped: its temporary file goes, the target stays.
            let summary = tokio::select! {
                summary = export(&engine, &options) => summary?,
                _ = wait_for_signal() => anyhow::bail!("interrupted; no file was written"),
            };
            if let Some(out) = &options.out {
                eprintln!("exported {} rows to {}", summary.rows, out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            data_dir,
            format,
            out,
        } => {
            let (name, text) = read_script(&file)?;
            let engine = Engine::open_with(&data_dir, EngineOptions::default())
                .await
                .with_context(|| format!("opening data directory {data_dir}"))?;
            let session = Session::new(&engine, Settings::default(), SessionIdentity::default())?;
            let Some(out) = out else {
                let stdout = std::io::stdout();
                run_script(&session, &name, &text, format, &mut stdout.lock()).await?;
                return Ok(ExitCode::SUCCESS);
            };
            let written = run_script_to_files(&session, &name, &text, &out).await?;
            if written.is_empty() {
                eprintln!(
                    "the script returned no rows to write; {} not written",
                    out.display()
                );
            }
            for (path, rows) in written {
                println!("wrote {rows} rows to {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::EvalText { eval_dir } => {
            let report = bianzhi_engine::text_eval::evaluate(&eval_dir)
                .await
                .with_context(|| format!("evaluating over {}", eval_dir.display()))?;
            print!("{report}");
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

/// Run the server until SIGINT or SIGTERM.
async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let config = ServerConfig::resolve(
        file,
        Overrides {
            listen: args.listen,
            data_dir: args.data_dir,
            address_file: args.address_file,
            max_connections: args.max_connections,
            auth: args.auth,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            statement_timeout: args.statement_timeout,
            query_memory: args.query_memory,
            monitor_every: args.monitor_every,
        },
    )?;
    let options = EngineOptions {
        query_memory_limit: config.query_memory_limit,
        ..EngineOptions::default()
    };
    let engine = Engine::open_with(&config.data_dir, options)
        .await
        .with_context(|| format!("opening data directory {}", config.data_dir))?;
    let trust = matches!(config.auth, bianzhi_engine::server::config::Auth::Trust);
    let data_dir = config.data_dir.clone();
    let monitor_every = config.monitor_every;
    let server = Server::bind(engine.clone(), config).await?;
    // An analyst's first 職能交叉 join or search should not wait for the
    // files the text functions saved.
    let _reading = engine.read_saved_pair_tokens_in_background();
    tokio::spawn({
        let engine = engine.clone();
        async move { engine.read_saved_search_index().await }
    });
    let address = server.local_addr();
    let user = if trust { "analyst" } else { "<user>" };
    let ssl = if server.tls_enabled() {
        " sslmode=require"
    } else {
        ""
    };
    println!("bianzhi listening on {address} (data: {data_dir})");
    println!(
        "connect with: psql \"host={} port={} dbname=bianzhi user={user}{ssl}\"",
        address.ip(),
        address.port()
    );
    let _ = std::io::stdout().flush();
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });
    if let Some(every) = monitor_every {
        tracing::info!(?every, "monitoring rules run on a schedule");
        tokio::spawn(monitor::run_on_schedule(engine, every, shutdown.clone()));
    }
    server.run(shutdown).await;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
