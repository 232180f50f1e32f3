//! `bianzhi run`: execute a script of statements and print each result.

use std::io::Write;

use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::output::{write_result, OutputFormat};
use crate::script::split;

/// What a script run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub statements: usize,
    pub result_sets: usize,
}

/// Run every statement of `text` in order on `ctx`, printing results to `out`;
/// stop at the first failure with its statement number and line.
pub async fn run_script(
    ctx: &SessionContext,
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
    for statement in &statements {
        let fail = |message: String| Error::Statement {
            file: file.to_string(),
            statement: statement.number,
            line: statement.line,
            message,
        };
        let frame = ctx
            .sql(&statement.sql)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.map_err(|e| fail(e.to_string()))?;
        summary.statements += 1;
        if !schema.fields().is_empty() {
            write_result(out, format, &schema, &batches)?;
            summary.result_sets += 1;
        }
    }
    out.flush().map_err(|e| Error::Io {
        context: "writing results".into(),
        source: e,
    })?;
    Ok(summary)
}
