//! Query results as an Excel workbook: one sheet, a bold header row frozen at
//! the top, and cells of Excel's own kinds so a spreadsheet can sum, sort
//! and filter them — numbers as numbers, dates and timestamps as Excel dates
//! with a date format, booleans as booleans, NULL as an empty cell.
//!
//! Excel stores every number as a double. A value a double cannot hold
//! exactly (an integer beyond ±2^53, a decimal with more than 15 significant
//! digits) is written as text, so the file never shows a number that differs
//! from the database. Dates before 1900-03-01, which Excel's calendar gets
//! wrong, are written as ISO text too. A `timestamptz` is written as its UTC
//! wall time, and the header says so. Excel has no empty string: `''` is a
//! blank cell, as NULL is.

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    RecordBatch,
};
use datafusion::arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, Schema, TimeUnit, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use datafusion::arrow::util::display::ArrayFormatter;
use rust_xlsxwriter::{DocProperties, Format, Workbook, Worksheet, XlsxError};

/// Rows a sheet holds besides the header (Excel's limit is 1,048,576 rows).
pub const MAX_DATA_ROWS: u64 = 1_048_575;
/// The largest integer a double holds exactly.
const EXACT_INTEGER: i128 = 1 << 53;
/// Days from Excel's day 0 (1899-12-30) to 1970-01-01.
const EXCEL_UNIX_EPOCH: f64 = 25_569.0;
/// 1900-03-01 as days since 1970-01-01: Excel dates before it are off by one.
const FIRST_SAFE_DAY: i32 = -25_508;

/// Why a workbook could not be made.
#[derive(Debug, thiserror::Error)]
pub enum XlsxExportError {
    #[error(
        "an Excel sheet holds at most {MAX_DATA_ROWS} rows below its header and this result has more; export to CSV or Parquet instead"
    )]
    TooManyRows,
    #[error("row {row}, column {column}: {source}")]
    Cell {
        row: u64,
        column: String,
        #[source]
        source: XlsxError,
    },
    #[error("{0}")]
    Workbook(#[from] XlsxError),
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

/// Builds one sheet from batches, then the workbook's bytes.
pub struct SheetWriter {
    workbook: Workbook,
    formats: Formats,
    rows: u64,
    names: Vec<String>,
}

struct Formats {
    header: Format,
    date: Format,
    timestamp: Format,
    /// `0`, `0.0`, `0.00` … by decimal scale.
    decimals: Vec<Format>,
}

impl SheetWriter {
    /// A workbook whose sheet starts with the column names; `query` goes in
    /// the document properties' comment, saying where the rows came from.
    pub fn new(schema: &Schema, query: &str) -> Result<SheetWriter, XlsxExportError> {
        let mut workbook = Workbook::new();
        workbook.set_properties(
            &DocProperties::new()
                .set_comment(query)
                .set_author(format!("bianzhi {}", env!("CARGO_PKG_VERSION"))),
        );
        let formats = Formats {
            header: Format::new().set_bold(),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            timestamp: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            decimals: (0..=10)
                .map(|scale| {
                    let pattern = if scale == 0 {
                        "0".to_string()
                    } else {
                        format!("0.{}", "0".repeat(scale))
                    };
                    Format::new().set_num_format(pattern)
                })
                .collect(),
        };
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|field| match field.data_type() {
                DataType::Timestamp(_, Some(_)) => format!("{} (UTC)", field.name()),
                _ => field.name().clone(),
            })
            .collect();
        let sheet = workbook.add_worksheet();
        sheet.set_name("result")?;
        for (column, name) in names.iter().enumerate() {
            let column = column_number(column)?;
            sheet.write_string_with_format(0, column, name, &formats.header)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(SheetWriter {
            workbook,
            formats,
            rows: 0,
            names,
        })
    }

    /// Append the batch's rows.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), XlsxExportError> {
        if self.rows + batch.num_rows() as u64 > MAX_DATA_ROWS {
            return Err(XlsxExportError::TooManyRows);
        }
        let first_row = self.rows + 1;
        let sheet = self.workbook.worksheet_from_index(0)?;
        for (index, array) in batch.columns().iter().enumerate() {
            let column = column_number(index)?;
            write_column(sheet, &self.formats, array.as_ref(), first_row, column).map_err(
                |(row, source)| XlsxExportError::Cell {
                    row,
                    column: self.names.get(index).cloned().unwrap_or_default(),
                    source,
                },
            )?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The workbook's bytes, columns widened to their contents.
    pub fn finish(mut self) -> Result<Vec<u8>, XlsxExportError> {
        let sheet = self.workbook.worksheet_from_index(0)?;
        sheet.set_autofit_max_width(400).autofit();
        Ok(self.workbook.save_to_buffer()?)
    }
}

fn column_number(index: usize) -> Result<u16, XlsxError> {
    u16::try_from(index).map_err(|_| XlsxError::RowColumnLimitError)
}

/// One column of a batch, rows from `first_row`; an error carries the
/// 1-based data row it happened on.
fn write_column(
    sheet: &mut Worksheet,
    formats: &Formats,
    array: &dyn Array,
    first_row: u64,
    column: u16,
) -> Result<(), (u64, XlsxError)> {
    let nulls = array.logical_nulls();
    // Values a double cannot hold, and types Excel has no cell for, go as text.
    let text = ArrayFormatter::try_new(array, &super::csv_format_options())
        .map_err(|e| (first_row, XlsxError::ParameterError(e.to_string())))?;
    for index in 0..array.len() {
        if nulls.as_ref().is_some_and(|n| n.is_null(index)) {
            continue;
        }
        let data_row = first_row + index as u64;
        let row =
            u32::try_from(data_row).map_err(|_| (data_row, XlsxError::RowColumnLimitError))?;
        let cell = Cell::of(array, index);
        let written = match cell {
            Some(Cell::Number(value)) => sheet.write_number(row, column, value).map(|_| ()),
            Some(Cell::Formatted(value, kind)) => {
                let format = match kind {
                    NumberKind::Date => &formats.date,
                    NumberKind::Timestamp => &formats.timestamp,
                    NumberKind::Decimal(scale) => formats
                        .decimals
                        .get(scale)
                        .or(formats.decimals.last())
                        .unwrap_or(&formats.date),
                };
                sheet
                    .write_number_with_format(row, column, value, format)
                    .map(|_| ())
            }
            Some(Cell::Boolean(value)) => sheet.write_boolean(row, column, value).map(|_| ()),
            None => sheet
                .write_string(row, column, text.value(index).to_string())
                .map(|_| ()),
        };
        written.map_err(|e| (data_row, e))?;
    }
    Ok(())
}

enum NumberKind {
    Date,
    Timestamp,
    Decimal(usize),
}

/// A value as an Excel cell, or `None` to write its text.
enum Cell {
    Number(f64),
    Formatted(f64, NumberKind),
    Boolean(bool),
}

impl Cell {
    fn of(array: &dyn Array, index: usize) -> Option<Cell> {
        let integer =
            |value: i128| (value.abs() <= EXACT_INTEGER).then_some(Cell::Number(value as f64));
        match array.data_type() {
            DataType::Int8 => integer(array.as_primitive::<Int8Type>().value(index).into()),
            DataType::Int16 => integer(array.as_primitive::<Int16Type>().value(index).into()),
            DataType::Int32 => integer(array.as_primitive::<Int32Type>().value(index).into()),
            DataType::Int64 => integer(array.as_primitive::<Int64Type>().value(index).into()),
            DataType::UInt8 => integer(array.as_primitive::<UInt8Type>().value(index).into()),
            DataType::UInt16 => integer(array.as_primitive::<UInt16Type>().value(index).into()),
            DataType::UInt32 => integer(array.as_primitive::<UInt32Type>().value(index).into()),
            DataType::UInt64 => integer(array.as_primitive::<UInt64Type>().value(index).into()),
            DataType::Float32 => {
                let value = array.as_any().downcast_ref::<Float32Array>()?.value(index);
                value.is_finite().then_some(Cell::Number(value.into()))
            }
            DataType::Float64 => {
                let value = array.as_any().downcast_ref::<Float64Array>()?.value(index);
                value.is_finite().then_some(Cell::Number(value))
            }
            DataType::Decimal128(_, scale) => {
                let scale = usize::try_from(*scale).ok()?;
                let unscaled = array
                    .as_any()
                    .downcast_ref::<Decimal128Array>()?
                    .value(index);
                // 15 significant digits survive a round trip through a double.
                if unscaled.unsigned_abs() >= 10u128.pow(15) {
                    return None;
                }
                let value = unscaled as f64 / 10f64.powi(scale as i32);
                Some(Cell::Formatted(value, NumberKind::Decimal(scale)))
            }
            DataType::Boolean => Some(Cell::Boolean(
                array.as_any().downcast_ref::<BooleanArray>()?.value(index),
            )),
            DataType::Date32 => {
                let days = array.as_any().downcast_ref::<Date32Array>()?.value(index);
                (days >= FIRST_SAFE_DAY)
                    .then(|| Cell::Formatted(f64::from(days) + EXCEL_UNIX_EPOCH, NumberKind::Date))
            }
            DataType::Timestamp(unit, _) => {
                let per_day = match unit {
                    TimeUnit::Second => 86_400.0,
                    TimeUnit::Millisecond => 86_400e3,
                    TimeUnit::Microsecond => 86_400e6,
                    TimeUnit::Nanosecond => 86_400e9,
                };
                let ticks = match unit {
                    TimeUnit::Second => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>()
                        .value(index),
                    TimeUnit::Millisecond => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                        .value(index),
                    TimeUnit::Microsecond => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                        .value(index),
                    TimeUnit::Nanosecond => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>()
                        .value(index),
                };
                let days = ticks as f64 / per_day;
                (days >= f64::from(FIRST_SAFE_DAY)).then_some(Cell::Formatted(
                    days + EXCEL_UNIX_EPOCH,
                    NumberKind::Timestamp,
                ))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use calamine::{Data, DataType as _, Reader, Xlsx};
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::Field;

    use super::*;

    fn read_back(bytes: Vec<u8>) -> Vec<Vec<Data>> {
        let mut workbook = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let range = workbook.worksheet_range("result").unwrap();
        range.rows().map(|row| row.to_vec()).collect()
    }

    #[test]
    fn cells_keep_their_kinds_and_unsafe_values_become_text() {
        let schema = Schema::new(vec![
            Field::new("名称", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("amount", DataType::Decimal128(20, 2), true),
            Field::new("d", DataType::Date32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("ok", DataType::Boolean, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("深圳市"), None, Some("")])),
            Arc::new(Int64Array::from(vec![Some(42), Some(i64::MAX), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345), Some(10i128.pow(18)), None])
                    .with_precision_and_scale(20, 2)
                    .unwrap(),
            ),
            // 2024-05-01, 1899-12-30 (before Excel's safe range), NULL
            Arc::new(Date32Array::from(vec![Some(19_844), Some(-25_569), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_714_536_000_000_000), None, None])
                    .with_timezone("UTC"),
            ),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), columns).unwrap();
        let mut sheet = SheetWriter::new(&schema, "SELECT 1").unwrap();
        sheet.write_batch(&batch).unwrap();
        let rows = read_back(sheet.finish().unwrap());
        assert_eq!(
            rows[0],
            ["名称", "n", "amount", "d", "at (UTC)", "ok"]
                .map(|s| Data::String(s.to_string()))
                .to_vec()
        );
        assert_eq!(rows[1][0], Data::String("深圳市".into()));
        assert_eq!(rows[1][1], Data::Float(42.0));
        assert_eq!(rows[1][2], Data::Float(123.45));
        // Dates come back as Excel dates: 2024-05-01 is serial 45413.
        assert_eq!(
            rows[1][3].as_date(),
            chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
        );
        assert_eq!(
            rows[1][4].as_datetime().map(|t| t.to_string()),
            Some("2024-05-01 04:00:00".to_string())
        );
        assert_eq!(rows[1][5], Data::Bool(true));
        // NULL is an empty cell; values a double would change are text.
        assert_eq!(rows[2][0], Data::Empty);
        assert_eq!(rows[2][1], Data::String(i64::MAX.to_string()));
        assert_eq!(rows[2][2], Data::String("10000000000000000.00".into()));
        assert_eq!(rows[2][3], Data::String("1899-12-30".into()));
        assert_eq!(rows[2][5], Data::Bool(false));
        // Excel has no empty string: '' is a blank cell like NULL, so the
        // last row, all NULL but an '', reads back as no row.
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn more_rows_than_a_sheet_holds_is_refused() {
        let schema = Schema::new(vec![Field::new("n", DataType::Int64, false)]);
        let mut sheet = SheetWriter::new(&schema, "q").unwrap();
        sheet.rows = MAX_DATA_ROWS - 1;
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef],
        )
        .unwrap();
        let err = sheet.write_batch(&batch).unwrap_err().to_string();
        assert!(err.contains("at most 1048575 rows"), "{err}");
    }
}
