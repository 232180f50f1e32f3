//! Cells to Arrow batches: each row's cells parsed by their columns' types
//! and checked (required values, code sets), straight into column builders.
//!
//! A delimited file is converted in parallel: its text is cut into chunks at
//! record boundaries and each chunk is parsed by its own CSV reader into its
//! own batches, borrowing every cell from the file's text (no string per
//! cell). The chunks' results are joined in file order, so rows, row numbers
//! and rejected values come out as a single pass would give them.

use std::collections::{BTreeMap, BTreeSet};

use bianzhi_catalog::TableDef;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use rayon::prelude::*;

use super::header::HeaderMap;
use super::source::SourceRow;
use super::value::ColumnBuilder;
use super::RejectedValue;

/// Rows per batch handed to the Delta writer.
const BATCH_ROWS: usize = 65_536;
/// A chunk of a delimited file converted by one task.
const CHUNK_BYTES: usize = 8 << 20;

/// Converted rows, in file order.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub batches: Vec<RecordBatch>,
    /// The file row number of every converted row.
    pub row_numbers: Vec<u64>,
    pub rejected: Vec<RejectedValue>,
    pub stopped_early: bool,
}

/// What every conversion of one import shares.
pub(crate) struct Conversion<'a> {
    pub table: &'a TableDef,
    pub header: &'a HeaderMap,
    pub code_sets: &'a BTreeMap<String, BTreeSet<String>>,
    pub max_errors: usize,
}

impl Conversion<'_> {
    /// Rows already split into cells (a workbook, JSON, Parquet, COPY data).
    pub(crate) fn rows(&self, rows: &[SourceRow]) -> Result<Converted, String> {
        let mut sink = RowSink::new(self)?;
        for row in rows {
            if !sink.push(row.number, &row.cells.as_slice())? {
                break;
            }
        }
        sink.finish()
    }

    /// The records of `text` (CSV or TSV without the rows up to the header),
    /// whose first line is line `first_line` of the file.
    pub(crate) fn delimited(
        &self,
        text: &str,
        delimiter: u8,
        first_line: u64,
    ) -> Result<Converted, String> {
        self.delimited_in_chunks(text, delimiter, first_line, CHUNK_BYTES)
    }

    fn delimited_in_chunks(
        &self,
        text: &str,
        delimiter: u8,
        first_line: u64,
        chunk_bytes: usize,
    ) -> Result<Converted, String> {
        let chunks = record_chunks(text.as_bytes(), delimiter, chunk_bytes);
        let results: Vec<Result<Converted, String>> = chunks
            .par_iter()
            .map(|chunk| {
                let line = first_line + chunk.lines_before;
                self.delimited_chunk(&text.as_bytes()[chunk.start..chunk.end], delimiter, line)
            })
            .collect();
        let mut joined = Converted::default();
        for result in results {
            let part = result?;
            if joined.rejected.len() >= self.max_errors {
                // As one pass: stopped early when any record follows.
                joined.stopped_early |= !part.row_numbers.is_empty() || !part.rejected.is_empty();
                continue;
            }
            joined.rejected.extend(part.rejected);
            joined.stopped_early |= part.stopped_early;
            if joined.rejected.is_empty() {
                joined.batches.extend(part.batches);
                joined.row_numbers.extend(part.row_numbers);
            }
        }
        if joined.rejected.len() > self.max_errors {
            joined.rejected.truncate(self.max_errors);
            joined.stopped_early = true;
        }
        if !joined.rejected.is_empty() {
            joined.batches.clear();
            joined.row_numbers.clear();
        }
        Ok(joined)
    }

    fn delimited_chunk(
        &self,
        bytes: &[u8],
        delimiter: u8,
        first_line: u64,
    ) -> Result<Converted, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(bytes);
        let mut sink = RowSink::new(self)?;
        let mut record = csv::ByteRecord::new();
        let mut lines = LineCounter::new(bytes, first_line);
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = lines.line_of(record.position().map_or(0, |p| p.byte()));
                    if !sink.push(line, &RecordCells(&record))? {
                        break;
                    }
                }
                Err(e) => {
                    let line = first_line + e.position().map_or(1, |p| p.line()) - 1;
                    return Err(format!("line {line}: {e}"));
                }
            }
        }
        sink.finish()
    }
}

/// Line numbers of records, counted from their byte offsets (the CSV
/// reader's own line count puts a record after a blank line on the blank
/// line).
pub(crate) struct LineCounter<'t> {
    bytes: &'t [u8],
    counted_to: usize,
    line: u64,
}

impl<'t> LineCounter<'t> {
    pub(crate) fn new(bytes: &'t [u8], first_line: u64) -> Self {
        LineCounter {
            bytes,
            counted_to: 0,
            line: first_line,
        }
    }

    /// The line a record starting at `offset` (or at the blank lines just
    /// before it) is on; offsets must not decrease.
    pub(crate) fn line_of(&mut self, offset: u64) -> u64 {
        let mut at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .clamp(self.counted_to, self.bytes.len());
        while at < self.bytes.len() && matches!(self.bytes[at], b'\n' | b'\r') {
            at += 1;
        }
        self.line += self.bytes[self.counted_to..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.counted_to = at;
        self.line
    }
}

/// The cells of one row: `None` for an empty (or all-blank) cell.
trait Cells {
    fn count(&self) -> usize;
    fn cell(&self, position: usize) -> Option<&str>;
}

impl Cells for &[Option<String>] {
    fn count(&self) -> usize {
        self.len()
    }

    fn cell(&self, position: usize) -> Option<&str> {
        self.get(position).and_then(Option::as_deref)
    }
}

/// A CSV record's fields, read in place.
struct RecordCells<'r>(&'r csv::ByteRecord);

impl Cells for RecordCells<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn cell(&self, position: usize) -> Option<&str> {
        // The text is valid UTF-8 and fields are cut at ASCII delimiters,
        // quotes and line breaks, so every field is valid UTF-8 too.
        let field = std::str::from_utf8(self.0.get(position)?).ok()?;
        (!field.trim().is_empty()).then_some(field)
    }
}

/// Where one chunk of records lies in the text.
#[derive(Debug, Clone, PartialEq)]
struct Chunk {
    start: usize,
    end: usize,
    /// Line breaks before `start`.
    lines_before: u64,
}

/// Cuts `bytes` into chunks of about `target` bytes, each ending after a
/// line break outside quotes. Quotes are read as the CSV reader reads them:
/// a `"` opens a quoted field only at the start of a field, `""` inside one
/// is a quote, and a `"` inside an unquoted field (`12"`) is a character.
fn record_chunks(bytes: &[u8], delimiter: u8, target: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let (mut start, mut lines_before) = (0usize, 0u64);
    let mut position = 0usize;
    let mut quoted = false;
    // Jump from one byte that matters to the next (memchr), not byte by byte.
    while position < bytes.len() {
        if quoted {
            match memchr::memchr(b'"', &bytes[position..]) {
                None => break,
                Some(at) => {
                    let at = position + at;
                    if bytes.get(at + 1) == Some(&b'"') {
                        position = at + 2;
                    } else {
                        quoted = false;
                        position = at + 1;
                    }
                }
            }
            continue;
        }
        let Some(at) = memchr::memchr3(b'"', b'\n', b'\r', &bytes[position..]) else {
            break;
        };
        let at = position + at;
        position = at + 1;
        match bytes[at] {
            b'"' => {
                // Opens a quoted field only at the start of a field.
                quoted =
                    at == 0 || matches!(bytes[at - 1], b'\n' | b'\r') || bytes[at - 1] == delimiter;
            }
            b'\n' if position - start >= target => {
                chunks.push(Chunk {
                    start,
                    end: position,
                    lines_before,
                });
                lines_before += memchr::memchr_iter(b'\n', &bytes[start..position]).count() as u64;
                start = position;
            }
            _ => {}
        }
    }
    if start < bytes.len() {
        chunks.push(Chunk {
            start,
            end: bytes.len(),
            lines_before,
        });
    }
    chunks
}

/// Builds the batches of one run of rows.
struct RowSink<'a> {
    conversion: &'a Conversion<'a>,
    schema: SchemaRef,
    /// Cell position of each table column.
    position_of: Vec<Option<usize>>,
    builders: Vec<ColumnBuilder>,
    pending: usize,
    out: Converted,
}

impl<'a> RowSink<'a> {
    fn new(conversion: &'a Conversion<'a>) -> Result<Self, String> {
        let table = conversion.table;
        let mut position_of: Vec<Option<usize>> = vec![None; table.columns.len()];
        for (position, column) in conversion.header.columns.iter().enumerate() {
            if let Some(column) = column {
                position_of[*column] = Some(position);
            }
        }
        Ok(RowSink {
            conversion,
            schema: table.arrow_schema(),
            position_of,
            builders: new_builders(table)?,
            pending: 0,
            out: Converted::default(),
        })
    }

    /// Converts one row; `false` once `max_errors` values are rejected (the
    /// caller stops).
    fn push(&mut self, number: u64, cells: &impl Cells) -> Result<bool, String> {
        let Conversion {
            table,
            header,
            code_sets,
            max_errors,
        } = *self.conversion;
        if self.out.rejected.len() >= max_errors {
            self.out.stopped_early = true;
            return Ok(false);
        }
        if (0..cells.count()).all(|position| cells.cell(position).is_none()) {
            return Ok(true);
        }
        let rejected = &mut self.out.rejected;
        let mut reject =
            |header_name: &str, column: &str, value: Option<&str>, expected: String| {
                rejected.push(RejectedValue {
                    row: number,
                    header: header_name.to_string(),
                    column: column.to_string(),
                    value: value.map(str::to_string),
                    expected,
                });
            };
        for position in 0..cells.count() {
            let unnamed = header.columns.get(position).is_none_or(Option::is_none);
            if !unnamed {
                continue;
            }
            if let Some(value) = cells.cell(position) {
                let name = header
                    .names
                    .get(position)
                    .cloned()
                    .unwrap_or_else(|| format!("column {}", position + 1));
                reject(
                    &name,
                    "-",
                    Some(value),
                    "no value: the column has no header".to_string(),
                );
            }
        }
        for (index, column) in table.columns.iter().enumerate() {
            let builder = &mut self.builders[index];
            let (header_name, cell) = match self.position_of[index] {
                Some(position) => (header.names[position].as_str(), cells.cell(position)),
                None => ("(not in the file)", None),
            };
            let Some(text) = cell.map(str::trim) else {
                if column.nullable {
                    builder.append_null();
                } else {
                    reject(
                        header_name,
                        &column.name,
                        None,
                        "a value: the column is required".to_string(),
                    );
                }
                continue;
            };
            if let Some(codes) = column.code_set.as_ref().and_then(|set| code_sets.get(set)) {
                if !codes.contains(text) {
                    let listed: Vec<&str> = codes.iter().take(12).map(String::as_str).collect();
                    reject(
                        header_name,
                        &column.name,
                        Some(text),
                        format!(
                            "a code of 代码集 {}: {}{}",
                            column.code_set.as_deref().unwrap_or_default(),
                            listed.join(", "),
                            if codes.len() > listed.len() {
                                ", …"
                            } else {
                                ""
                            }
                        ),
                    );
                    continue;
                }
            }
            if let Err(expected) = builder.append_text(text) {
                reject(header_name, &column.name, Some(text), expected);
            }
        }
        if self.out.rejected.is_empty() {
            self.out.row_numbers.push(number);
            self.pending += 1;
            if self.pending == BATCH_ROWS {
                let full = std::mem::replace(&mut self.builders, new_builders(table)?);
                self.out.batches.push(finish_batch(&self.schema, full)?);
                self.pending = 0;
            }
        }
        Ok(true)
    }

    fn finish(mut self) -> Result<Converted, String> {
        let max_errors = self.conversion.max_errors;
        if self.out.rejected.len() > max_errors {
            // The row that reached the limit may have had several.
            self.out.rejected.truncate(max_errors);
            self.out.stopped_early = true;
        }
        if self.out.rejected.is_empty() && self.pending > 0 {
            self.out
                .batches
                .push(finish_batch(&self.schema, self.builders)?);
        }
        if !self.out.rejected.is_empty() {
            self.out.batches.clear();
            self.out.row_numbers.clear();
        }
        Ok(self.out)
    }
}

fn new_builders(table: &TableDef) -> Result<Vec<ColumnBuilder>, String> {
    table
        .columns
        .iter()
        .map(|c| ColumnBuilder::new(&c.data_type).map_err(|e| format!("{}: {e}", c.name)))
        .collect()
}

fn finish_batch(schema: &SchemaRef, builders: Vec<ColumnBuilder>) -> Result<RecordBatch, String> {
    let columns = builders
        .into_iter()
        .map(ColumnBuilder::finish)
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::header::find_header;
    use super::super::source::head_rows;
    use super::*;

    /// Converts `text` (header on line 1) in chunks of `chunk_bytes`, and
    /// row by row, and checks both give the same result.
    fn both_ways(text: &str, chunk_bytes: usize, max_errors: usize) -> Converted {
        let catalog = bianzhi_catalog::Catalog::builtin().unwrap();
        let table = catalog.table("external_roster").unwrap();
        let head = head_rows(text, b',', usize::MAX).unwrap();
        let header = find_header(table, &head.rows, None, false).unwrap();
        let mut code_sets = BTreeMap::new();
        code_sets.insert(
            "roster_source".to_string(),
            ["财政统发工资", "社会保险"].map(String::from).into(),
        );
        let conversion = Conversion {
            table,
            header: &header,
            code_sets: &code_sets,
            max_errors,
        };
        let start = head.next_record_at[header.row_index];
        let chunked = conversion
            .delimited_in_chunks(&text[start..], b',', 2, chunk_bytes)
            .unwrap();
        let single = conversion.rows(&head.rows[header.row_index + 1..]).unwrap();
        assert_eq!(chunked.row_numbers, single.row_numbers);
        assert_eq!(chunked.rejected, single.rejected);
        assert_eq!(chunked.stopped_early, single.stopped_early);
        let rows = |c: &Converted| c.batches.iter().map(|b| b.num_rows()).sum::<usize>();
        assert_eq!(rows(&chunked), rows(&single));
        if let (Some(a), Some(b)) = (chunked.batches.first(), single.batches.first()) {
            let all_a =
                datafusion::arrow::compute::concat_batches(&a.schema(), &chunked.batches).unwrap();
            let all_b =
                datafusion::arrow::compute::concat_batches(&b.schema(), &single.batches).unwrap();
            assert_eq!(all_a, all_b);
        }
        chunked
    }

    const HEADER: &str =
        "数据来源,所属期,公民身份号码摘要,姓名,发薪或缴费单位标识,项目,金额(元),事件日期\n";

    #[test]
    fn chunks_give_what_one_pass_gives() {
        let mut text = HEADER.to_string();
        for row in 0..40 {
            if row == 7 {
                // a blank line and a name with a quoted line break
                text.push_str("\n财政统发工资,2024-01-01,h7,\"张\n三\",1001,应发工资,10.00,\n");
                continue;
            }
            if row == 20 {
                // a stray quote inside an unquoted field, then a quoted line break
                text.push_str("财政统发工资,2024-01-01,h20,王\"五,1001,应发工资,10.00,\n");
                text.push_str("财政统发工资,2024-01-01,h21,\"赵\n六\",1001,应发工资,10.00,\n");
                continue;
            }
            text.push_str(&format!(
                "社会保险,2024/{}/1,h{row},\"王, \"\"五\"\"\",{row},养老保险缴费,{row}.5,2024年1月{}日\n",
                row % 12 + 1,
                row % 28 + 1
            ));
        }
        for chunk_bytes in [1, 7, 64, 300, 1 << 20] {
            let converted = both_ways(&text, chunk_bytes, 10);
            assert!(converted.rejected.is_empty(), "{:?}", converted.rejected);
            assert_eq!(converted.row_numbers.len(), 41);
            // line numbers count the blank line and the line break inside quotes
            assert_eq!(converted.row_numbers[6..9], [8, 10, 12]);
        }
    }

    #[test]
    fn rejected_values_across_chunks_keep_file_order_and_the_limit() {
        let mut text = HEADER.to_string();
        for row in 0..30 {
            let source = if row % 4 == 3 {
                "工资"
            } else {
                "社会保险"
            };
            text.push_str(&format!(
                "{source},2024-01-01,h{row},王五,{row},养老保险缴费,1.00,\n"
            ));
        }
        for chunk_bytes in [1, 50, 200, 1 << 20] {
            let all = both_ways(&text, chunk_bytes, 100);
            let lines: Vec<u64> = all.rejected.iter().map(|r| r.row).collect();
            assert_eq!(lines, [5, 9, 13, 17, 21, 25, 29]);
            assert!(!all.stopped_early);
            assert!(all.batches.is_empty());
            let limited = both_ways(&text, chunk_bytes, 3);
            let lines: Vec<u64> = limited.rejected.iter().map(|r| r.row).collect();
            assert_eq!(lines, [5, 9, 13]);
            assert!(limited.stopped_early);
        }
    }

    fn pieces<'a>(text: &'a str, chunks: &[Chunk]) -> Vec<&'a str> {
        chunks.iter().map(|c| &text[c.start..c.end]).collect()
    }

    #[test]
    fn chunks_end_at_line_breaks_outside_quotes() {
        let text = "a,b\n\"x\ny\",2\n\"say \"\"hi\"\"\n\",3\nlast,4";
        let chunks = record_chunks(text.as_bytes(), b',', 1);
        assert_eq!(
            pieces(text, &chunks),
            [
                "a,b\n",
                "\"x\ny\",2\n",
                "\"say \"\"hi\"\"\n\",3\n",
                "last,4"
            ]
        );
        assert_eq!(
            chunks.iter().map(|c| c.lines_before).collect::<Vec<_>>(),
            [0, 1, 3, 5]
        );
        // Large targets make one chunk; the pieces always cover the text.
        let one = record_chunks(text.as_bytes(), b',', 1 << 20);
        assert_eq!(pieces(text, &one), [text]);
        for target in 1..text.len() + 2 {
            let chunks = record_chunks(text.as_bytes(), b',', target);
            assert_eq!(pieces(text, &chunks).concat(), text, "target {target}");
        }
        assert!(record_chunks(b"", b',', 4).is_empty());
        // A quote inside an unquoted field is a character: it opens nothing.
        let stray = "12\",a\n\"x\ny\",b\nc\td\n";
        assert_eq!(
            pieces(stray, &record_chunks(stray.as_bytes(), b',', 1)),
            ["12\",a\n", "\"x\ny\",b\n", "c\td\n"]
        );
    }
}
