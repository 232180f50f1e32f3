//! `bianzhi export`: a table, or the rows of a query, to a CSV, Parquet or
//! Excel file.
//!
//! A file is written under a temporary name beside the target and renamed
//! over it only once every row is written and synced, so a failed or
//! interrupted export leaves the target as it was (absent, or the previous
//! file). Rows stream from the query to the file; nothing is collected.
//!
//! CSV is written the way PostgreSQL's `COPY … (FORMAT csv, HEADER)` writes
//! it: UTF-8, a header line, `,` between fields, `\n` after each row, a NULL
//! as an empty unquoted field and an empty string as `""`, fields quoted when
//! they contain `,`, `"`, CR or LF. Parquet keeps the Arrow types (decimals
//! stay decimals, timestamps keep their zone) and the columns' comments.
//! Excel is described in [`xlsx`].

pub mod xlsx;

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::StreamExt;

use crate::session::{Prepared, QueryKind, Session};
use crate::sqlstate::SqlError;
use crate::{Engine, Error, SessionIdentity, Settings};

/// The file formats `bianzhi export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// UTF-8 CSV with a header line (PostgreSQL's CSV conventions).
    Csv,
    /// Apache Parquet (Snappy-compressed), with the Arrow schema.
    Parquet,
    /// An Excel workbook (.xlsx) of one sheet; at most 1,048,575 rows.
    Xlsx,
}

impl ExportFormat {
    /// The format a file name asks for: `.parquet` → Parquet, `.xlsx` →
    /// Excel, anything else CSV.
    pub fn for_path(path: &Path) -> ExportFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("parquet") => ExportFormat::Parquet,
            Some(ext) if ext.eq_ignore_ascii_case("xlsx") => ExportFormat::Xlsx,
            _ => ExportFormat::Csv,
        }
    }
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// A table name (`org`, `generator.planted`) or a query returning rows.
    pub source: String,
    pub format: ExportFormat,
    /// The file to write; `None` writes to standard output.
    pub out: Option<PathBuf>,
    /// Start a CSV file with a UTF-8 byte order mark, for Excel on Windows.
    pub bom: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    /// The statement that was run.
    pub query: String,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The query failed to plan or to run.
    #[error("[{}] {}", .0.code, .0.message)]
    Sql(SqlError),
    /// The source is neither a table name nor a query that returns rows.
    #[error("{0}")]
    NotAQuery(String),
    /// Writing or renaming the output.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Encoding rows as CSV or Parquet.
    #[error("writing {format:?}: {message}")]
    Encode {
        format: ExportFormat,
        message: String,
    },
    #[error(transparent)]
    Engine(#[from] Error),
}

impl From<SqlError> for ExportError {
    fn from(error: SqlError) -> Self {
        ExportError::Sql(error)
    }
}

/// The statement an export runs: a table name (one to three identifiers,
/// possibly quoted) reads the whole table, anything else is the query itself.
pub fn export_query(source: &str) -> String {
    let source = source.trim().trim_end_matches(';').trim();
    let dialect = PostgreSqlDialect {};
    let table = Parser::new(&dialect)
        .try_with_sql(source)
        .and_then(|mut parser| {
            let name = parser.parse_object_name(false)?;
            Ok((name, parser.peek_token().token == Token::EOF))
        });
    match table {
        Ok((name, true)) if name.0.len() <= 3 => format!("SELECT * FROM {name}"),
        _ => source.to_string(),
    }
}

/// Run `options.source` in a new session of `engine` and write its rows.
/// Dropping the future before it completes (on Ctrl-C, say) removes the
/// temporary file and leaves the target untouched.
pub async fn export(
    engine: &Engine,
    options: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    if options.out.is_none()
        && options.format != ExportFormat::Csv
        && std::io::stdout().is_terminal()
    {
        return Err(ExportError::NotAQuery(format!(
            "{:?} is binary: give --out FILE or redirect standard output",
            options.format
        )));
    }
    let session = Session::new(engine, Settings::default(), SessionIdentity::default())?;
    let query = export_query(&options.source);
    let stream = match session.prepare(&query).await? {
        Prepared::Query {
            plan,
            kind: QueryKind::Rows,
        } => session.execute(plan).await?,
        _ => {
            return Err(ExportError::NotAQuery(format!(
                "bianzhi export needs a table name or a query that returns rows, not: {query}"
            )))
        }
    };
    let metadata = query_metadata(&query);
    let rows = match &options.out {
        Some(path) => stream_to_file(stream, options.format, options.bom, metadata, path).await?,
        None => {
            let stdout = BufWriter::new(std::io::stdout());
            let (rows, mut stdout) =
                write_stream(stream, options.format, options.bom, metadata, stdout).await?;
            stdout.flush().map_err(|source| ExportError::Io {
                path: PathBuf::from("<stdout>"),
                source,
            })?;
            rows
        }
    };
    Ok(ExportSummary { rows, query })
}

/// Write rows already collected (a result of `bianzhi run`) to the file
/// `path` in `format`, atomically as [`export`] does; returns the row count.
pub async fn write_file(
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
    format: ExportFormat,
    path: &Path,
    query: &str,
) -> Result<u64, ExportError> {
    let stream: SendableRecordBatchStream = Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ),
    );
    stream_to_file(stream, format, false, query_metadata(query), path).await
}

/// The file's key-value metadata: the query the rows came from.
fn query_metadata(query: &str) -> Vec<KeyValue> {
    vec![KeyValue::new(
        "bianzhi.query".to_string(),
        query.to_string(),
    )]
}

/// Write `stream` to `path` through a temporary file renamed over it once
/// complete; returns the row count.
async fn stream_to_file(
    stream: SendableRecordBatchStream,
    format: ExportFormat,
    bom: bool,
    metadata: Vec<KeyValue>,
    path: &Path,
) -> Result<u64, ExportError> {
    let file = AtomicFile::create(path)?;
    let (rows, file) = write_stream(stream, format, bom, metadata, file).await?;
    file.commit()?;
    Ok(rows)
}

/// Write every batch of `stream` to `out` in `format`; returns the row count
/// and `out`, complete (a Parquet footer written, buffers flushed).
async fn write_stream<W: Write + Send>(
    mut stream: SendableRecordBatchStream,
    format: ExportFormat,
    bom: bool,
    metadata: Vec<KeyValue>,
    out: W,
) -> Result<(u64, W), ExportError> {
    let encode = |e: &dyn std::fmt::Display| ExportError::Encode {
        format,
        message: e.to_string(),
    };
    let mut rows = 0u64;
    match format {
        ExportFormat::Csv => {
            let mut csv = CsvWriter::new(out);
            if bom {
                csv.write_bom().map_err(|e| encode(&e))?;
            }
            csv.write_header(&stream.schema()).map_err(|e| encode(&e))?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| crate::sqlstate::from_datafusion(&e))?;
                rows += batch.num_rows() as u64;
                csv.write_batch(&batch).map_err(|e| encode(&e))?;
            }
            let mut out = csv.into_inner();
            out.flush().map_err(|e| encode(&e))?;
            Ok((rows, out))
        }
        ExportFormat::Parquet => {
            let properties = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_created_by(format!("bianzhi {}", env!("CARGO_PKG_VERSION")))
                .set_key_value_metadata(Some(metadata))
                .build();
            let mut writer = ArrowWriter::try_new(out, stream.schema(), Some(properties))
                .map_err(|e| encode(&e))?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| crate::sqlstate::from_datafusion(&e))?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(|e| encode(&e))?;
            }
            // into_inner writes the footer.
            let mut out = writer.into_inner().map_err(|e| encode(&e))?;
            out.flush().map_err(|e| encode(&e))?;
            Ok((rows, out))
        }
        ExportFormat::Xlsx => {
            let query = metadata
                .first()
                .and_then(|m| m.value.clone())
                .unwrap_or_default();
            let mut sheet =
                xlsx::SheetWriter::new(&stream.schema(), &query).map_err(|e| encode(&e))?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| crate::sqlstate::from_datafusion(&e))?;
                rows += batch.num_rows() as u64;
                sheet.write_batch(&batch).map_err(|e| encode(&e))?;
            }
            let mut out = out;
            out.write_all(&sheet.finish().map_err(|e| encode(&e))?)
                .map_err(|e| encode(&e))?;
            out.flush().map_err(|e| encode(&e))?;
            Ok((rows, out))
        }
    }
}

/// CSV as PostgreSQL's COPY writes it (see the module documentation).
pub struct CsvWriter<W: Write> {
    out: W,
    field: String,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        CsvWriter {
            out,
            field: String::new(),
        }
    }

    pub fn write_bom(&mut self) -> std::io::Result<()> {
        self.out.write_all("\u{feff}".as_bytes())
    }

    /// The column names, as one line.
    pub fn write_header(&mut self, schema: &Schema) -> std::io::Result<()> {
        for (index, field) in schema.fields().iter().enumerate() {
            if index > 0 {
                self.out.write_all(b",")?;
            }
            write_field(&mut self.out, field.name())?;
        }
        self.out.write_all(b"\n")
    }

    /// One line per row.
    pub fn write_batch(
        &mut self,
        batch: &RecordBatch,
    ) -> Result<(), datafusion::arrow::error::ArrowError> {
        use std::fmt::Write as _;
        let options = csv_format_options();
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
        for row in 0..batch.num_rows() {
            for (index, formatter) in formatters.iter().enumerate() {
                if index > 0 {
                    self.out.write_all(b",")?;
                }
                if nulls[index].as_ref().is_some_and(|n| n.is_null(row)) {
                    continue;
                }
                self.field.clear();
                write!(self.field, "{}", formatter.value(row)).map_err(|e| {
                    datafusion::arrow::error::ArrowError::ExternalError(Box::new(e))
                })?;
                write_field(&mut self.out, &self.field)?;
            }
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Dates and timestamps as PostgreSQL prints them in ISO style, with the
/// fraction only when there is one: `2025-05-01 12:00:00`,
/// `2025-05-01 04:00:00.500+00:00`.
fn csv_format_options() -> FormatOptions<'static> {
    FormatOptions::new()
        .with_display_error(false)
        .with_date_format(Some("%Y-%m-%d"))
        .with_datetime_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"))
}

/// A non-NULL value: quoted when empty (so it differs from NULL) or when it
/// holds a delimiter, quote or line break; quotes inside are doubled.
fn write_field(out: &mut impl Write, value: &str) -> std::io::Result<()> {
    let quote = value.is_empty() || value.contains([',', '"', '\n', '\r']);
    if !quote {
        return out.write_all(value.as_bytes());
    }
    out.write_all(b"\"")?;
    out.write_all(value.replace('"', "\"\"").as_bytes())?;
    out.write_all(b"\"")
}

/// A file written under a temporary name in the target's directory and
/// renamed over the target by [`AtomicFile::commit`]; dropped uncommitted,
/// the temporary file is removed.
pub(crate) struct AtomicFile {
    target: PathBuf,
    temporary: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub(crate) fn create(target: &Path) -> Result<AtomicFile, ExportError> {
        let io = |source| ExportError::Io {
            path: target.to_path_buf(),
            source,
        };
        let name = target.file_name().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let directory = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !directory.is_dir() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the directory {} does not exist", directory.display()),
            )));
        }
        let temporary = directory.join(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|source| ExportError::Io {
                path: temporary.clone(),
                source,
            })?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temporary,
            file: Some(BufWriter::new(file)),
        })
    }

    /// Replaces `target` with what `write` writes, whole or not at all: how
    /// the derived files beside the tables (token counts, search index,
    /// pair tokens) are saved.
    pub(crate) fn write_whole(
        target: &Path,
        write: impl FnOnce(&mut AtomicFile) -> std::io::Result<()>,
    ) -> Result<(), ExportError> {
        let mut file = AtomicFile::create(target)?;
        write(&mut file).map_err(|source| ExportError::Io {
            path: target.to_path_buf(),
            source,
        })?;
        file.commit()
    }

    /// Flush, sync and rename over the target.
    pub(crate) fn commit(mut self) -> Result<(), ExportError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ExportError::Io { path, source }
        };
        if let Some(file) = self.file.take() {
            let file = file
                .into_inner()
                .map_err(|e| io(&self.temporary)(e.into_error()))?;
            file.sync_all().map_err(io(&self.temporary))?;
        }
        std::fs::rename(&self.temporary, &self.target).map_err(io(&self.target))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(file) => file.write(buf),
            None => Err(std::io::Error::other("the export file is closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, NullArray, StringArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

    use super::*;

    #[test]
    fn table_names_read_the_table_and_anything_else_is_a_query() {
        assert_eq!(export_query("org"), "SELECT * FROM org");
        assert_eq!(export_query(" org; "), "SELECT * FROM org");
        assert_eq!(
            export_query("generator.planted"),
            "SELECT * FROM generator.planted"
        );
        assert_eq!(
            export_query("bianzhi.public.\"org\""),
            "SELECT * FROM bianzhi.public.\"org\""
        );
        assert_eq!(
            export_query("SELECT org_id FROM org"),
            "SELECT org_id FROM org"
        );
        assert_eq!(export_query("table_at('org', 1)"), "table_at('org', 1)");
        assert_eq!(export_query("a.b.c.d"), "a.b.c.d");
    }

    #[test]
    fn file_names_imply_formats() {
        assert_eq!(
            ExportFormat::for_path(Path::new("x/out.PARQUET")),
            ExportFormat::Parquet
        );
        assert_eq!(
            ExportFormat::for_path(Path::new("out.csv")),
            ExportFormat::Csv
        );
        assert_eq!(ExportFormat::for_path(Path::new("out")), ExportFormat::Csv);
        assert_eq!(
            ExportFormat::for_path(Path::new("名册.XLSX")),
            ExportFormat::Xlsx
        );
    }

    fn csv_of(batch: &RecordBatch) -> String {
        let mut csv = CsvWriter::new(Vec::new());
        csv.write_header(&batch.schema()).unwrap();
        csv.write_batch(batch).unwrap();
        String::from_utf8(csv.into_inner()).unwrap()
    }

    #[test]
    fn csv_tells_null_from_empty_and_quotes_what_needs_it() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("深圳市"),
            None,
            Some(""),
            Some("a,b"),
            Some("say \"hi\""),
            Some("two\nlines"),
        ]));
        let number: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(1),
            Some(-2),
            None,
            Some(4),
            Some(5),
            Some(6),
        ]));
        let schema = Schema::new(vec![
            Field::new("名称", DataType::Utf8, true),
            Field::new("n,x", DataType::Int64, true),
        ]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![text, number]).unwrap();
        assert_eq!(
            csv_of(&batch),
            "名称,\"n,x\"\n深圳市,1\n,-2\n\"\",\n\"a,b\",4\n\"say \"\"hi\"\"\",5\n\"two\nlines\",6\n"
        );
    }

    #[test]
    fn csv_writes_dates_timestamps_decimals_and_floats_exactly() {
        let schema = Schema::new(vec![
            Field::new("d", DataType::Date32, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("f", DataType::Float64, true),
            Field::new("nothing", DataType::Null, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(vec![Some(19_844)])),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(
                1_714_536_000_000_000,
            )])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_714_536_000_500_000)])
                    .with_timezone("UTC"),
            ),
            Arc::new(
                Decimal128Array::from(vec![Some(1_000)])
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ),
            Arc::new(Float64Array::from(vec![Some(0.1)])),
            Arc::new(NullArray::new(1)),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        assert_eq!(
            csv_of(&batch),
            "d,t,tz,amount,f,nothing\n2024-05-01,2024-05-01 04:00:00,2024-05-01 04:00:00.500+00:00,10.00,0.1,\n"
        );
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_and_a_committed_one_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old").unwrap();
        {
            let mut file = AtomicFile::create(&target).unwrap();
            file.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = AtomicFile::create(&dir.path().join("missing/out.csv"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
