//! Reading an import file into rows of text cells: CSV and TSV (UTF-8, GBK
//! or GB18030), Excel workbooks, JSON and Parquet. Every row keeps the number
//! a person sees in the file (line of a CSV, row of a sheet, record of JSON or
//! Parquet) for error messages.

use std::path::Path;

use calamine::{open_workbook_auto, Data, Reader};
use datafusion::arrow::array::{Array, AsArray, RecordBatchReader};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// File formats `bianzhi import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    Csv,
    Tsv,
    Parquet,
    Xlsx,
    Json,
}

impl ImportFormat {
    /// The format a file name suggests.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "csv" => Self::Csv,
            "tsv" | "tab" => Self::Tsv,
            "parquet" => Self::Parquet,
            "xlsx" | "xlsm" | "xls" | "ods" => Self::Xlsx,
            "json" | "jsonl" | "ndjson" => Self::Json,
            _ => return None,
        })
    }
}

/// Text encodings of CSV and TSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextEncoding {
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    Gbk,
    Gb18030,
}

impl TextEncoding {
    /// The encoding's usual name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Gbk => "GBK",
            Self::Gb18030 => "GB18030",
        }
    }
}

/// One row of the file: its number as a person sees it, and its cells
/// (`None` for an empty cell).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceRow {
    pub number: u64,
    pub cells: Vec<Option<String>>,
}

/// What was read: the rows, whether the first one is certainly the header
/// (JSON keys, Parquet field names), and the sheet read from a workbook.
#[derive(Debug)]
pub(crate) struct SourceRows {
    pub rows: Vec<SourceRow>,
    pub header_is_first: bool,
    pub sheet: Option<String>,
    /// The encoding a CSV was decoded with.
    pub encoding: Option<TextEncoding>,
}

/// Reads `path` as `format`; the message of an error says what is wrong.
pub(crate) fn read_rows(
    path: &Path,
    format: ImportFormat,
    encoding: Option<TextEncoding>,
    sheet: Option<&str>,
) -> Result<SourceRows, String> {
    match format {
        ImportFormat::Csv => read_delimited(path, b',', encoding),
        ImportFormat::Tsv => read_delimited(path, b'\t', encoding),
        ImportFormat::Xlsx => read_workbook(path, sheet),
        ImportFormat::Json => read_json(path),
        ImportFormat::Parquet => read_parquet(path),
    }
}

/// Decodes the bytes: UTF-8 (a byte order mark is dropped) unless told
/// otherwise or unless they are not valid UTF-8, then GB18030 (a superset of
/// GBK and GB2312). Undecodable bytes are an error, never replaced.
fn decode(
    mut bytes: Vec<u8>,
    encoding: Option<TextEncoding>,
) -> Result<(String, TextEncoding), String> {
    if bytes.starts_with(b"\xEF\xBB\xBF") && encoding != Some(TextEncoding::Gbk) {
        bytes.drain(..3);
    }
    let utf8 = |bytes: Vec<u8>| -> Result<String, (String, Vec<u8>)> {
        String::from_utf8(bytes).map_err(|e| {
            let valid_up_to = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let (line, column) = position_of(&bytes, valid_up_to);
            (
                format!("line {line}, byte {column}: not valid UTF-8 (try --encoding gbk)"),
                bytes,
            )
        })
    };
    let gb = |bytes: &[u8], label: TextEncoding| -> Result<(String, TextEncoding), String> {
        let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
        if had_errors {
            return Err(format!(
                "bytes that are not {} text (is the file in another encoding?)",
                if label == TextEncoding::Gbk {
                    "GBK"
                } else {
                    "GB18030"
                }
            ));
        }
        Ok((text.into_owned(), label))
    };
    match encoding {
        Some(TextEncoding::Utf8) => Ok((utf8(bytes).map_err(|(e, _)| e)?, TextEncoding::Utf8)),
        Some(label) => gb(&bytes, label),
        None => match utf8(bytes) {
            Ok(text) => Ok((text, TextEncoding::Utf8)),
            Err((_, bytes)) => gb(&bytes, TextEncoding::Gb18030),
        },
    }
}

/// 1-based line and byte-in-line of a byte offset.
fn position_of(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    (line, offset - line_start + 1)
}

/// A CSV record: its first line, and each field with whether it was quoted.
type CsvRecord = (u64, Vec<(String, bool)>);

/// CSV records as (line, fields), each field with whether it was quoted;
/// blank lines are skipped. Quotes are `"`, doubled inside a quoted field.
fn csv_records(text: &str, delimiter: u8) -> Result<Vec<CsvRecord>, String> {
    let bytes = text.as_bytes();
    let mut records = Vec::new();
    let (mut at, mut line) = (0usize, 1u64);
    while at < bytes.len() {
        if bytes[at] == b'\n' || bytes[at] == b'\r' {
            line += u64::from(bytes[at] == b'\n');
            at += 1;
            continue;
        }
        let first_line = line;
        let mut fields = Vec::new();
        loop {
            let mut value = Vec::new();
            let mut quoted = false;
            if at < bytes.len() && bytes[at] == b'"' {
                quoted = true;
                at += 1;
                loop {
                    match bytes.get(at) {
                        None => {
                            return Err(format!("line {first_line}: unterminated CSV quoted field"))
                        }
                        Some(b'"') if bytes.get(at + 1) == Some(&b'"') => {
                            value.push(b'"');
                            at += 2;
                        }
                        Some(b'"') => {
                            at += 1;
                            break;
                        }
                        Some(&byte) => {
                            line += u64::from(byte == b'\n');
                            value.push(byte);
                            at += 1;
                        }
                    }
                }
            }
            while at < bytes.len() && bytes[at] != delimiter && bytes[at] != b'\n' {
                if bytes[at] == b'\r' && bytes.get(at + 1) == Some(&b'\n') {
                    break;
                }
                value.push(bytes[at]);
                at += 1;
            }
            // Cut at ASCII bytes of valid UTF-8 text, so still valid.
            let value = String::from_utf8(value).map_err(|e| format!("line {line}: {e}"))?;
            fields.push((value, quoted));
            if at < bytes.len() && bytes[at] == delimiter {
                at += 1;
                continue;
            }
            break;
        }
        records.push((first_line, fields));
    }
    Ok(records)
}

/// Every record of a CSV/TSV file as cells (the import itself converts
/// delimited files in parallel chunks; see `convert.rs`).
fn read_delimited(
    path: &Path,
    delimiter: u8,
    encoding: Option<TextEncoding>,
) -> Result<SourceRows, String> {
    let (text, used) = read_text(path, encoding)?;
    let head = head_rows(&text, delimiter, usize::MAX)?;
    Ok(SourceRows {
        rows: head.rows,
        header_is_first: false,
        sheet: None,
        encoding: Some(used),
    })
}

/// A CSV/TSV file's text (decoded; the bytes themselves when they are
/// UTF-8) and the encoding it was read in.
pub(crate) fn read_text(
    path: &Path,
    encoding: Option<TextEncoding>,
) -> Result<(String, TextEncoding), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    decode(bytes, encoding)
}

/// The first records of a delimited text (enough to find the header in),
/// and the byte offset where the record after each one starts.
pub(crate) struct HeadRows {
    pub rows: Vec<SourceRow>,
    pub next_record_at: Vec<usize>,
}

pub(crate) fn head_rows(text: &str, delimiter: u8, records: usize) -> Result<HeadRows, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut head = HeadRows {
        rows: Vec::new(),
        next_record_at: Vec::new(),
    };
    let mut record = csv::StringRecord::new();
    let mut lines = super::convert::LineCounter::new(text.as_bytes(), 1);
    while head.rows.len() < records {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                head.rows.push(SourceRow {
                    number: lines.line_of(record.position().map_or(0, |p| p.byte())),
                    cells: record
                        .iter()
                        .map(|cell| (!cell.trim().is_empty()).then(|| cell.to_string()))
                        .collect(),
                });
                head.next_record_at
                    .push(usize::try_from(reader.position().byte()).unwrap_or(text.len()));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(format!("line {line}: {e}"));
            }
        }
    }
    Ok(head)
}

fn read_workbook(path: &Path, sheet: Option<&str>) -> Result<SourceRows, String> {
    let mut workbook = open_workbook_auto(path).map_err(|e| e.to_string())?;
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(wanted) => names
            .iter()
            .find(|name| name.as_str() == wanted)
            .cloned()
            .ok_or_else(|| format!("no sheet \"{wanted}\"; the sheets are {names:?}"))?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| "the workbook has no sheets".to_string())?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| format!("sheet \"{name}\": {e}"))?;
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let mut rows = Vec::new();
    for (index, row) in range.rows().enumerate() {
        // Columns left of the used range are empty cells, so that cell
        // positions match the sheet's columns.
        let mut cells: Vec<Option<String>> = vec![None; first_column as usize];
        cells.extend(row.iter().map(cell_text));
        rows.push(SourceRow {
            number: u64::from(first_row) + index as u64 + 1,
            cells,
        });
    }
    Ok(SourceRows {
        rows,
        header_is_first: false,
        sheet: Some(name),
        encoding: None,
    })
}

/// A spreadsheet cell as text: whole numbers without `.0`, dates as
/// `YYYY-MM-DD` (with the time when it is not midnight).
fn cell_text(cell: &Data) -> Option<String> {
    let text = match cell {
        Data::Empty => return None,
        Data::String(text) => text.clone(),
        Data::Int(value) => value.to_string(),
        Data::Float(value) if value.fract() == 0.0 && value.abs() < 1e15 => {
            format!("{}", *value as i64)
        }
        Data::Float(value) => value.to_string(),
        Data::Bool(value) => value.to_string(),
        Data::DateTime(moment) => match moment.as_datetime() {
            Some(at) if at.time() == chrono::NaiveTime::MIN => at.format("%Y-%m-%d").to_string(),
            Some(at) => at.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => moment.to_string(),
        },
        Data::DateTimeIso(text) | Data::DurationIso(text) => text.clone(),
        Data::Error(error) => format!("#{error:?}"),
    };
    (!text.trim().is_empty()).then_some(text)
}

/// An array of objects, or one object per line (JSON Lines). The header is
/// every key in order of first appearance.
fn read_json(path: &Path) -> Result<SourceRows, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let records: Vec<(u64, serde_json::Value)> = if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
        values
            .into_iter()
            .enumerate()
            .map(|(index, value)| (index as u64 + 1, value))
            .collect()
    } else {
        let mut records = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(line)
                .map_err(|e| format!("line {}, column {}: {e}", index + 1, e.column()))?;
            records.push((index as u64 + 1, value));
        }
        records
    };
    let mut keys: Vec<String> = Vec::new();
    for (number, record) in &records {
        let serde_json::Value::Object(object) = record else {
            return Err(format!("record {number} is not an object"));
        };
        for key in object.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    let mut rows = vec![SourceRow {
        number: 0,
        cells: keys.iter().cloned().map(Some).collect(),
    }];
    for (number, record) in records {
        let serde_json::Value::Object(object) = record else {
            continue;
        };
        let cells = keys
            .iter()
            .map(|key| match object.get(key) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(text)) => {
                    (!text.trim().is_empty()).then(|| text.clone())
                }
                Some(other) => Some(other.to_string()),
            })
            .collect();
        rows.push(SourceRow { number, cells });
    }
    Ok(SourceRows {
        rows,
        header_is_first: true,
        sheet: None,
        encoding: None,
    })
}

/// The field names are the header; each value is cast to text the way
/// Arrow prints it (dates `2024-01-05`, timestamps RFC 3339).
fn read_parquet(path: &Path) -> Result<SourceRows, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|e| e.to_string())?;
    let schema = reader.schema();
    let mut rows = vec![SourceRow {
        number: 0,
        cells: schema
            .fields()
            .iter()
            .map(|field| Some(field.name().clone()))
            .collect(),
    }];
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let columns = batch
            .columns()
            .iter()
            .map(|column| cast(column, &DataType::Utf8).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let first = rows.len() as u64;
        for row in 0..batch.num_rows() {
            rows.push(SourceRow {
                number: first + row as u64,
                cells: columns
                    .iter()
                    .map(|column| {
                        let text = column.as_string::<i32>();
                        (!text.is_null(row)).then(|| text.value(row).to_string())
                    })
                    .collect(),
            });
        }
    }
    Ok(SourceRows {
        rows,
        header_is_first: true,
        sheet: None,
        encoding: None,
    })
}

/// The rows of `COPY … FROM STDIN` data, numbered by line: PostgreSQL's
/// text format (delimiter tab, `\N` for NULL, backslash escapes, an
/// optional `\.` end line) or CSV (delimiter comma; the NULL string,
/// default empty, is NULL only unquoted, so a quoted `""` is the empty
/// string), as PostgreSQL reads them.
pub(crate) fn copy_rows(text: &str, layout: &super::CopyLayout) -> Result<Vec<SourceRow>, String> {
    let delimiter = layout
        .delimiter
        .unwrap_or(if layout.csv { ',' } else { '\t' });
    if !delimiter.is_ascii() {
        return Err("COPY delimiter must be a single one-byte character".to_string());
    }
    if layout.csv {
        // PostgreSQL: the NULL string (default empty) means NULL only
        // unquoted; a quoted "" is the empty string.
        let null = layout.null.clone().unwrap_or_default();
        let mut rows = Vec::new();
        for (line, fields) in csv_records(text, delimiter as u8)? {
            if fields.len() == 1 && !fields[0].1 && fields[0].0 == "\\." {
                break;
            }
            rows.push(SourceRow {
                number: line,
                cells: fields
                    .into_iter()
                    .map(|(value, quoted)| (quoted || value != null).then_some(value))
                    .collect(),
            });
        }
        return Ok(rows);
    }
    let null = layout.null.clone().unwrap_or_else(|| "\\N".to_string());
    let mut rows = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            break;
        }
        if line.is_empty() && index + 1 == text.split('\n').count() {
            break;
        }
        let cells = split_text_fields(line, delimiter)
            .into_iter()
            .map(|(raw, value)| (raw != null).then_some(value))
            .collect();
        rows.push(SourceRow {
            number: index as u64 + 1,
            cells,
        });
    }
    Ok(rows)
}

/// Fields of one text-format line, each as (raw text, unescaped value).
fn split_text_fields(line: &str, delimiter: char) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let (mut raw, mut value) = (String::new(), String::new());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == delimiter {
            fields.push((std::mem::take(&mut raw), std::mem::take(&mut value)));
        } else if c == '\\' {
            raw.push(c);
            let Some(escaped) = chars.next() else {
                value.push('\\');
                break;
            };
            raw.push(escaped);
            value.push(match escaped {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'v' => '\u{b}',
                other => other,
            });
        } else {
            raw.push(c);
            value.push(c);
        }
    }
    fields.push((raw, value));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_is_detected_and_bad_utf8_located() {
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,性别\n张三,男\n");
        let (text, used) = decode(gbk.to_vec(), None).unwrap();
        assert_eq!(text, "姓名,性别\n张三,男\n");
        assert_eq!(used, TextEncoding::Gb18030);
        let error = decode(gbk.to_vec(), Some(TextEncoding::Utf8)).unwrap_err();
        assert!(
            error.starts_with("line 1, byte 1: not valid UTF-8"),
            "{error}"
        );
        let (with_bom, used) = decode("\u{feff}a,b".as_bytes().to_vec(), None).unwrap();
        assert_eq!((with_bom.as_str(), used), ("a,b", TextEncoding::Utf8));
    }

    #[test]
    fn copy_text_and_csv_layouts() {
        let text = super::super::CopyLayout {
            csv: false,
            header: false,
            delimiter: None,
            null: None,
        };
        let rows = copy_rows("1\tA\\tB\t\\N\n2\t\t\\\\N\n\\.\nignored\n", &text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].cells, [Some("1".into()), Some("A\tB".into()), None]);
        // An empty field is an empty string; an escaped backslash before N is text.
        assert_eq!(
            rows[1].cells,
            [Some("2".into()), Some("".into()), Some("\\N".into())]
        );
        let csv = super::super::CopyLayout {
            csv: true,
            header: false,
            delimiter: Some(';'),
            null: Some("NA".into()),
        };
        let rows = copy_rows("1;\"a;b\";NA\n2;;\"NA\"\n", &csv).unwrap();
        assert_eq!(rows[0].cells, [Some("1".into()), Some("a;b".into()), None]);
        // With NULL 'NA', an empty field is '' and a quoted "NA" is text.
        assert_eq!(
            rows[1].cells,
            [Some("2".into()), Some("".into()), Some("NA".into())]
        );
        assert_eq!(rows[1].number, 2);
        // Default CSV: unquoted empty is NULL, quoted "" the empty string;
        // quotes doubled, line breaks inside quotes, CRLF, blank lines.
        let csv = super::super::CopyLayout {
            csv: true,
            header: false,
            delimiter: None,
            null: None,
        };
        let rows = copy_rows(
            "1,,\"\",\"say \"\"hi\"\"\"\r\n\n2,\"two\nlines\",编制,\n3,x,y,z\n\\.\n4,,,\n",
            &csv,
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].cells,
            [
                Some("1".into()),
                None,
                Some("".into()),
                Some("say \"hi\"".into())
            ]
        );
        assert_eq!(
            rows[1].cells,
            [
                Some("2".into()),
                Some("two\nlines".into()),
                Some("编制".into()),
                None
            ]
        );
        assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), [1, 3, 5]);
        let err = copy_rows("1,\"open\n", &csv).unwrap_err();
        assert_eq!(err, "line 1: unterminated CSV quoted field");
    }

    #[test]
    fn formats_from_extensions() {
        assert_eq!(
            ImportFormat::from_path(Path::new("实名制.XLSX")),
            Some(ImportFormat::Xlsx)
        );
        assert_eq!(
            ImportFormat::from_path(Path::new("a.jsonl")),
            Some(ImportFormat::Json)
        );
        assert_eq!(ImportFormat::from_path(Path::new("a.txt")), None);
    }

    #[test]
    fn spreadsheet_cells_as_text() {
        assert_eq!(cell_text(&Data::Float(12.0)), Some("12".to_string()));
        assert_eq!(cell_text(&Data::Float(0.5)), Some("0.5".to_string()));
        assert_eq!(cell_text(&Data::String("  ".into())), None);
        assert_eq!(cell_text(&Data::Empty), None);
    }
}
