//! `bianzhi import`: load a CSV/TSV (UTF-8 or GBK), Excel, JSON or Parquet
//! file into one table, checking every value first and committing all rows
//! in one Delta commit — or nothing at all.
//!
//! Steps: read the file into text cells ([`source`]), find the header and
//! match it to the table's columns by name or Chinese name ([`header`]),
//! parse every cell by its column's type and check codes against dict_code
//! ([`value`]) and primary keys against the file and the table, then write.
//! Any problem stops before the write, so a rejected import leaves the table
//! exactly as it was.

mod convert;
mod header;
mod source;
mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bianzhi_catalog::TableDef;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;
use deltalake::protocol::SaveMode;

pub use source::{ImportFormat, TextEncoding};

use crate::engine::Engine;
use crate::error::Error;
use convert::{Conversion, Converted};
use header::{find_header, HeaderMap, HEADER_SEARCH_ROWS};
use source::read_rows;

/// Whether the rows are added to the table or replace its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ImportMode {
    #[default]
    Append,
    Replace,
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Table name as in schema.sql (`external_roster`, `generator.planted`).
    pub table: String,
    pub file: PathBuf,
    /// Taken from the file name when not given.
    pub format: Option<ImportFormat>,
    /// CSV/TSV only; detected (UTF-8, else GB18030) when not given.
    pub encoding: Option<TextEncoding>,
    /// Workbook sheet; the first one when not given.
    pub sheet: Option<String>,
    /// 1-based row of the header; found among the first rows when not given.
    pub header_row: Option<u64>,
    pub mode: ImportMode,
    /// Stop reading after this many rejected values (at least 1).
    pub max_errors: usize,
}

/// A committed import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    pub table: String,
    pub rows: u64,
    /// The table's version after the commit (unchanged when no rows).
    pub version: Option<u64>,
    pub header_row: u64,
    pub sheet: Option<String>,
    pub encoding: Option<TextEncoding>,
}

/// One rejected value: where it is and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedValue {
    /// Row number in the file (line of a CSV, row of a sheet, record of
    /// JSON or Parquet).
    pub row: u64,
    /// The header as written in the file.
    pub header: String,
    /// The table column it fills.
    pub column: String,
    /// The value as read; `None` when the cell is empty.
    pub value: Option<String>,
    pub expected: String,
}

impl RejectedValue {
    /// The value and what was expected: `"2024-02-30": expected date: …`.
    pub fn problem(&self) -> String {
        let value = match &self.value {
            Some(value) => format!("\"{value}\""),
            None => "empty".to_string(),
        };
        format!("{value}: expected {}", self.expected)
    }
}

impl std::fmt::Display for RejectedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {}, column \"{}\" ({}): {}",
            self.row,
            self.header,
            self.column,
            self.problem()
        )
    }
}

/// Why an import was refused; in every case nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {message}")]
    Source { file: String, message: String },

    #[error("{file}: the header does not fit table {table}:\n  {}", problems.join("\n  "))]
    Header {
        file: String,
        table: String,
        problems: Vec<String>,
    },

    #[error("{}", rejected_message(file, sheet.as_deref(), table, rejected, *stopped_early))]
    Rejected {
        file: String,
        sheet: Option<String>,
        table: String,
        rejected: Vec<RejectedValue>,
        stopped_early: bool,
    },

    #[error(transparent)]
    Engine(#[from] Error),
}

/// `file: N value(s) rejected; …` and one line per rejected value.
fn rejected_message(
    file: &str,
    sheet: Option<&str>,
    table: &str,
    rejected: &[RejectedValue],
    stopped_early: bool,
) -> String {
    let location = sheet
        .map(|sheet| format!("sheet \"{sheet}\", "))
        .unwrap_or_default();
    let mut message = format!(
        "{file}: {} value(s) rejected{}; nothing was imported, {table} is unchanged:",
        rejected.len(),
        if stopped_early {
            " (stopped at --max-errors, there may be more)"
        } else {
            ""
        }
    );
    for value in rejected {
        message.push_str(&format!("\n  {location}{value}"));
    }
    message
}

impl From<datafusion::arrow::error::ArrowError> for ImportError {
    fn from(error: datafusion::arrow::error::ArrowError) -> Self {
        Self::Engine(error.into())
    }
}

impl From<bianzhi_catalog::Error> for ImportError {
    fn from(error: bianzhi_catalog::Error) -> Self {
        Self::Engine(error.into())
    }
}

impl From<datafusion::error::DataFusionError> for ImportError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        Self::Engine(error.into())
    }
}

/// Imports `options.file` into `options.table` of the engine's data
/// directory: every value checked, then one commit.
pub async fn import(engine: &Engine, options: &ImportOptions) -> Result<ImportReport, ImportError> {
    let table = engine.data_dir().catalog().table(&options.table)?;
    let file = options.file.display().to_string();
    let source_error = |message: String| ImportError::Source {
        file: file.clone(),
        message,
    };
    let format = match options.format {
        Some(format) => format,
        None => ImportFormat::from_path(&options.file).ok_or_else(|| {
            source_error(
                "cannot tell the format from the file name: give --format csv, tsv, parquet, xlsx or json"
                    .to_string(),
            )
        })?,
    };
    let path: &Path = &options.file;
    let started = std::time::Instant::now();
    let header_error = |problems| ImportError::Header {
        file: file.clone(),
        table: table.qualified_name(),
        problems,
    };
    let code_sets = read_code_sets(engine, table).await?;
    let max_errors = options.max_errors.max(1);
    let (header, converted, sheet, encoding) = match format {
        ImportFormat::Csv | ImportFormat::Tsv => {
            let delimiter = if format == ImportFormat::Csv {
                b','
            } else {
                b'\t'
            };
            let (text, encoding) =
                source::read_text(path, options.encoding).map_err(source_error)?;
            let wanted = HEADER_SEARCH_ROWS.max(
                options
                    .header_row
                    .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            );
            let head = source::head_rows(&text, delimiter, wanted).map_err(source_error)?;
            let header =
                find_header(table, &head.rows, options.header_row, false).map_err(header_error)?;
            let data_start = head.next_record_at[header.row_index].min(text.len());
            let first_line = text.as_bytes()[..data_start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
                + 1;
            let conversion = Conversion {
                table,
                header: &header,
                code_sets: &code_sets,
                max_errors,
            };
            let converted = conversion
                .delimited(&text[data_start..], delimiter, first_line)
                .map_err(source_error)?;
            (header, converted, None, Some(encoding))
        }
        _ => {
            let source = read_rows(path, format, options.encoding, options.sheet.as_deref())
                .map_err(source_error)?;
            let header = find_header(
                table,
                &source.rows,
                options.header_row,
                source.header_is_first,
            )
            .map_err(header_error)?;
            let conversion = Conversion {
                table,
                header: &header,
                code_sets: &code_sets,
                max_errors,
            };
            let converted = conversion
                .rows(&source.rows[header.row_index + 1..])
                .map_err(source_error)?;
            (header, converted, source.sheet, source.encoding)
        }
    };
    tracing::debug!(
        rows = converted.row_numbers.len(),
        seconds = started.elapsed().as_secs_f64(),
        "read and converted"
    );
    let target = Target {
        file: file.clone(),
        sheet: sheet.clone(),
        table,
    };
    let (rows, version) = check_and_write(
        engine,
        &target,
        &header,
        converted,
        options.mode,
        max_errors,
    )
    .await?;
    Ok(ImportReport {
        table: table.qualified_name(),
        rows,
        version,
        header_row: header.row_number,
        sheet,
        encoding,
    })
}

/// What rows are loaded into, and how to name their origin in messages.
struct Target<'a> {
    file: String,
    sheet: Option<String>,
    table: &'a TableDef,
}

/// Refuses the import if any value was rejected, checks primary keys
/// against the file and the table and, when all pass, writes the rows in one
/// commit. Returns the rows written and the new version.
async fn check_and_write(
    engine: &Engine,
    target: &Target<'_>,
    header: &HeaderMap,
    converted: Converted,
    mode: ImportMode,
    max_errors: usize,
) -> Result<(u64, Option<u64>), ImportError> {
    let table = target.table;
    let max_errors = max_errors.max(1);
    let started = std::time::Instant::now();
    let reject = |rejected: Vec<RejectedValue>, stopped_early: bool| ImportError::Rejected {
        file: target.file.clone(),
        sheet: target.sheet.clone(),
        table: table.qualified_name(),
        rejected,
        stopped_early,
    };
    if !converted.rejected.is_empty() {
        return Err(reject(converted.rejected, converted.stopped_early));
    }
    let existing_keys = match mode {
        ImportMode::Append => read_keys(engine, table).await?,
        ImportMode::Replace => HashMap::new(),
    };
    let duplicates = duplicate_keys(table, header, &converted, existing_keys, max_errors)?;
    if !duplicates.is_empty() {
        let stopped_early = duplicates.len() >= max_errors;
        return Err(reject(duplicates, stopped_early));
    }

    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "keys checked");
    let delta = engine.data_dir().load(&table.qualified_name()).await?;
    let rows: u64 = converted.batches.iter().map(|b| b.num_rows() as u64).sum();
    let version = if rows == 0 && mode == ImportMode::Append {
        delta.version()
    } else {
        let save_mode = match mode {
            ImportMode::Append => SaveMode::Append,
            ImportMode::Replace => SaveMode::Overwrite,
        };
        let written = delta
            .write(converted.batches)
            .with_save_mode(save_mode)
            .await
            .map_err(|e| bianzhi_catalog::Error::Delta {
                table: table.qualified_name(),
                source: Box::new(e),
            })?;
        written.version()
    };
    tracing::info!(table = %table.qualified_name(), rows, ?version, seconds = started.elapsed().as_secs_f64(), "imported");
    Ok((rows, version))
}

/// How `COPY … FROM STDIN` data is laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyLayout {
    /// CSV (quotes, `""` escapes) rather than PostgreSQL's text format
    /// (backslash escapes, `\N` for NULL).
    pub csv: bool,
    /// The first line is a header and is skipped.
    pub header: bool,
    pub delimiter: Option<char>,
    /// The NULL marker; default `\N` (text) or the empty string (CSV).
    pub null: Option<String>,
}

/// `COPY table [(columns)] FROM STDIN`: the data a client sent, checked and
/// appended in one commit like an import. `columns` empty means every
/// column in table order. Returns the rows written.
pub async fn copy_in(
    engine: &Engine,
    table_name: &str,
    columns: &[String],
    layout: &CopyLayout,
    data: Vec<u8>,
) -> Result<u64, ImportError> {
    let table = engine.data_dir().catalog().table(table_name)?;
    let label = format!("COPY {}", table.qualified_name());
    let source_error = |message: String| ImportError::Source {
        file: label.clone(),
        message,
    };
    let mut indices = Vec::new();
    for name in columns {
        let index = table
            .columns
            .iter()
            .position(|c| c.name == *name)
            .ok_or_else(|| {
                source_error(format!(
                    "column \"{name}\" of relation \"{}\" does not exist",
                    table.name
                ))
            })?;
        indices.push(index);
    }
    if indices.is_empty() {
        indices = (0..table.columns.len()).collect();
    }
    let header = HeaderMap {
        row_index: 0,
        row_number: 0,
        columns: indices.iter().map(|&i| Some(i)).collect(),
        names: indices
            .iter()
            .map(|&i| table.columns[i].name.clone())
            .collect(),
    };
    let target = Target {
        file: label.clone(),
        sheet: None,
        table,
    };
    let code_sets = read_code_sets(engine, table).await?;
    let max_errors = 100;
    // Parsing and checking are CPU work: off the async runtime, so a large
    // COPY does not hold up the server's other connections.
    let (layout, conversion_header) = (layout.clone(), header.clone());
    let converted = tokio::task::spawn_blocking(move || -> Result<Converted, String> {
        let text = std::str::from_utf8(&data).map_err(|e| {
            format!(
                "invalid byte sequence for encoding \"UTF8\" after byte {}",
                e.valid_up_to()
            )
        })?;
        let mut rows = source::copy_rows(text, &layout)?;
        if layout.header && !rows.is_empty() {
            rows.remove(0);
        }
        let width = conversion_header.columns.len();
        if let Some(row) = rows.iter().find(|row| row.cells.len() != width) {
            return Err(format!(
                "line {}: {} columns, expected {width}",
                row.number,
                row.cells.len(),
            ));
        }
        let conversion = Conversion {
            table,
            header: &conversion_header,
            code_sets: &code_sets,
            max_errors,
        };
        conversion.rows(&rows)
    })
    .await
    .map_err(|e| source_error(format!("COPY was interrupted: {e}")))?
    .map_err(&source_error)?;
    let (written, _) = check_and_write(
        engine,
        &target,
        &header,
        converted,
        ImportMode::Append,
        max_errors,
    )
    .await?;
    Ok(written)
}

impl ImportError {
    /// The SQLSTATE a client is told: 23502 for a missing required value,
    /// 23505 for a repeated key, 23503 for a value not in its code set,
    /// 22P02 for a malformed value, 22P04 for malformed COPY data.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::Source { .. } | Self::Header { .. } => "22P04",
            Self::Rejected { rejected, .. } => match rejected.first() {
                Some(r) if r.expected.contains("the column is required") => "23502",
                Some(r) if r.expected.starts_with("a key ") => "23505",
                Some(r) if r.expected.starts_with("a code of") => "23503",
                _ => "22P02",
            },
            Self::Engine(_) => "XX000",
        }
    }
}

/// The rows as batches of the table's schema, with each output row's number
/// in the file, or the rejected values.
/// Code set name → codes, from the data directory's dict_code, for the code
/// sets the table's columns use.
async fn read_code_sets(
    engine: &Engine,
    table: &TableDef,
) -> Result<BTreeMap<String, BTreeSet<String>>, ImportError> {
    let wanted: BTreeSet<&str> = table
        .columns
        .iter()
        .filter_map(|c| c.code_set.as_deref())
        .collect();
    let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(sets);
    }
    let ctx = engine.session()?;
    let batches = ctx
        .sql("SELECT code_set, code FROM dict_code")
        .await?
        .collect()
        .await?;
    for batch in batches {
        let (set_column, code_column) = (
            cast(batch.column(0), &DataType::Utf8)?,
            cast(batch.column(1), &DataType::Utf8)?,
        );
        let (set_column, code_column) = (
            set_column.as_string::<i32>(),
            code_column.as_string::<i32>(),
        );
        for row in 0..batch.num_rows() {
            if set_column.is_null(row) || code_column.is_null(row) {
                continue;
            }
            let set = set_column.value(row);
            if wanted.contains(set) {
                sets.entry(set.to_string())
                    .or_default()
                    .insert(code_column.value(row).to_string());
            }
        }
    }
    Ok(sets)
}

/// The primary key of each row of a batch, as text.
fn row_keys(table: &TableDef, batch: &RecordBatch) -> Result<Vec<String>, ImportError> {
    let mut keys = vec![String::new(); batch.num_rows()];
    for (position, key) in table.primary_key.iter().enumerate() {
        let Ok(index) = batch.schema().index_of(key) else {
            continue;
        };
        let column = batch.column(index);
        for (row, text) in keys.iter_mut().enumerate() {
            if position > 0 {
                text.push('\u{1f}');
            }
            text.push_str(&ScalarValue::try_from_array(column, row)?.to_string());
        }
    }
    Ok(keys)
}

/// Primary keys already in the table, each with nothing (the table holds
/// no row numbers).
async fn read_keys(
    engine: &Engine,
    table: &TableDef,
) -> Result<HashMap<String, Option<u64>>, ImportError> {
    let mut keys = HashMap::new();
    if table.primary_key.is_empty() {
        return Ok(keys);
    }
    let columns: Vec<String> = table
        .primary_key
        .iter()
        .map(|k| format!("\"{}\"", k.replace('"', "\"\"")))
        .collect();
    let sql = format!(
        "SELECT {} FROM {}",
        columns.join(", "),
        table.qualified_name()
    );
    let ctx = engine.session()?;
    for batch in ctx.sql(&sql).await?.collect().await? {
        for key in row_keys(table, &batch)? {
            keys.insert(key, None);
        }
    }
    Ok(keys)
}

/// Rows whose primary key repeats an earlier row of the file or a row of
/// the table.
fn duplicate_keys(
    table: &TableDef,
    header: &HeaderMap,
    converted: &Converted,
    existing: HashMap<String, Option<u64>>,
    max_errors: usize,
) -> Result<Vec<RejectedValue>, ImportError> {
    let mut rejected = Vec::new();
    if table.primary_key.is_empty() {
        return Ok(rejected);
    }
    let key_names = table.primary_key.join(", ");
    let header_names: Vec<String> = table
        .primary_key
        .iter()
        .map(|key| {
            let index = table.columns.iter().position(|c| &c.name == key);
            let position = header
                .columns
                .iter()
                .position(|c| c.is_some() && *c == index);
            position.map_or_else(|| key.clone(), |p| header.names[p].clone())
        })
        .collect();
    let mut seen = existing;
    let mut row_index = 0usize;
    for batch in &converted.batches {
        for key in row_keys(table, batch)? {
            let row = converted.row_numbers[row_index];
            row_index += 1;
            if let Some(earlier) = seen.get(&key) {
                rejected.push(RejectedValue {
                    row,
                    header: header_names.join(", "),
                    column: key_names.clone(),
                    value: Some(key.replace('\u{1f}', ", ")),
                    expected: match earlier {
                        Some(earlier) => format!("a key not used before (row {earlier} has it)"),
                        None => format!("a key not already in {}", table.qualified_name()),
                    },
                });
                if rejected.len() >= max_errors {
                    return Ok(rejected);
                }
            } else {
                seen.insert(key, Some(row));
            }
        }
    }
    Ok(rejected)
}
