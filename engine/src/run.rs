//! `bianzhi run`: execute a script of statements and print each result.

use std::io::Write;

use crate::error::{Error, Result};
use crate::output::{write_result, OutputFormat};
use crate::script::split;
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
    let statements = split(text).map_err(|e| Error::Script {
        file: file.to_string(),
        line: e.line,
        message: e.message,
    })?;
    let mut summary = RunSummary {
        statements: 0,
        result_sets: 0,
    };
    let io = |e: std::io::Error| Error::Io {
        context: "writing results".into(),
        source: e,
    };
    for statement in &statements {
        let output = session
            .run_one(&statement.sql)
            .await
            .map_err(|e| Error::Statement {
                file: file.to_string(),
                statement: statement.number,
                line: statement.line,
                message: format!("[{}] {}", e.code, e.message),
            })?;
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
