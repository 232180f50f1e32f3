//! `bianzhi run`: execute a script of statements and print each result.

use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;

use crate::error::{Error, Result};
use crate::output::{write_result, OutputFormat};
use crate::script::{split, Statement};
use crate::session::{Output, Session};

/// What a script run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub statements: usize,
    pub result_sets: usize,
}

/// Run every statement of `text` in order in `session`, printing results to
/// `out`; stop at the first failure with its statement number and line.
pub async fn run_script(
    session: &Session,
    file: &str,
    text: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<RunSummary> {
    let statements = statements_of(file, text)?;
    let mut summary = RunSummary {
        statements: 0,
        result_sets: 0,
    };
    let io = |e: std::io::Error| Error::Io {
        context: "writing results".into(),
        source: e,
    };
    for statement in &statements {
        let output = run_statement(session, file, statement).await?;
        summary.statements += 1;
        match output {
            Output::Rows { schema, batches } => {
                write_result(out, format, &schema, &batches)?;
                summary.result_sets += 1;
            }
            Output::Count { tag, rows } if format == OutputFormat::Table => {
                let tag = if tag == "INSERT" {
                    "INSERT 0".to_string()
                } else {
                    tag.to_string()
                };
                writeln!(out, "{tag} {rows}\n").map_err(io)?;
            }
            Output::Command { tag } if format == OutputFormat::Table && tag != "EMPTY" => {
                writeln!(out, "{tag}\n").map_err(io)?;
            }
            _ => {}
        }
    }
    out.flush().map_err(io)?;
    Ok(summary)
}

/// Run every statement of `text` and write each result set to a file
/// named after `out`, in the format of its extension (`.csv`, `.parquet`,
/// `.xlsx`): `out` itself for a script with one result set, `out` with
/// `-1`, `-2` … before the extension when there are more. Nothing is
/// written unless every statement succeeds (statements that write, such as
/// INSERT, have committed by then) and every result fits its format; each
/// file is written atomically. Returns each file and its rows.
pub async fn run_script_to_files(
    session: &Session,
    file: &str,
    text: &str,
    out: &Path,
) -> Result<Vec<(PathBuf, u64)>> {
    let mut results = Vec::new();
    for statement in &statements_of(file, text)? {
        let output = run_statement(session, file, statement).await?;
        if let Output::Rows { schema, batches } = output {
            results.push((statement.sql.clone(), schema, batches));
        }
    }
    let format = crate::export::ExportFormat::for_path(out);
    // Known limits are checked before any file is written.
    if format == crate::export::ExportFormat::Xlsx {
        for (sql, _, batches) in &results {
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            if rows as u64 > crate::export::xlsx::MAX_DATA_ROWS {
                return Err(Error::Io {
                    context: format!("writing {}", out.display()),
                    source: std::io::Error::other(format!(
                        "{}; the statement returning {rows} rows: {sql}",
                        crate::export::xlsx::XlsxExportError::TooManyRows
                    )),
                });
            }
        }
    }
    let numbered = results.len() > 1;
    let mut written = Vec::new();
    for (index, (sql, schema, batches)) in results.into_iter().enumerate() {
        let path = if numbered {
            numbered_path(out, index + 1)
        } else {
            out.to_path_buf()
        };
        let rows = crate::export::write_file(schema, batches, format, &path, &sql)
            .await
            .map_err(|e| Error::Io {
                context: format!("writing {}", path.display()),
                source: std::io::Error::other(e.to_string()),
            })?;
        written.push((path, rows));
    }
    Ok(written)
}

/// The statements of a script; a script that cannot be split names its line.
fn statements_of(file: &str, text: &str) -> Result<Vec<Statement>> {
    split(text).map_err(|e| Error::Script {
        file: file.to_string(),
        line: e.line,
        message: e.message,
    })
}

/// Runs one statement; a failure names the statement, its line and SQLSTATE.
async fn run_statement(session: &Session, file: &str, statement: &Statement) -> Result<Output> {
    session
        .run_one(&statement.sql)
        .await
        .map_err(|e| Error::Statement {
            file: file.to_string(),
            statement: statement.number,
            line: statement.line,
            message: format!("[{}] {}", e.code, e.message),
        })
}

/// `report.parquet`, 2 → `report-2.parquet`.
fn numbered_path(path: &Path, number: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(extension) => format!("{stem}-{number}.{}", extension.to_string_lossy()),
        None => format!("{stem}-{number}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_files_keep_the_extension() {
        assert_eq!(
            numbered_path(Path::new("out/报表.parquet"), 2),
            PathBuf::from("out/报表-2.parquet")
        );
        assert_eq!(numbered_path(Path::new("r"), 1), PathBuf::from("r-1"));
    }
}
