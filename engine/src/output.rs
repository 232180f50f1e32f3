//! Printing query results as an aligned table, CSV or JSON.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::{Error, Result};

/// How `bianzhi run` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned table followed by the row count, for people.
    #[default]
    Table,
    /// CSV with a header line, for spreadsheets.
    Csv,
    /// One JSON array of row objects per query, for programs.
    Json,
}

/// Write one query's result.
pub fn write_result(
    out: &mut dyn Write,
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let io = |e: std::io::Error| Error::Io {
        context: "writing results".into(),
        source: e,
    };
    match format {
        OutputFormat::Table => {
            let table = if batches.is_empty() {
                pretty_format_batches(&[RecordBatch::new_empty(schema.clone())])?
            } else {
                pretty_format_batches(batches)?
            };
            writeln!(out, "{table}").map_err(io)?;
            writeln!(out, "({rows} {})", if rows == 1 { "row" } else { "rows" }).map_err(io)?;
            writeln!(out).map_err(io)?;
        }
        OutputFormat::Csv => {
            let mut writer = WriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
            drop(writer);
        }
        OutputFormat::Json => {
            let mut writer = ArrayWriter::new(&mut *out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs)?;
            writer.finish()?;
            drop(writer);
            writeln!(out).map_err(io)?;
        }
    }
    Ok(())
}
