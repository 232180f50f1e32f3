//! Finding the header row of an import file and matching its cells to the
//! table's columns, by column name or by the Chinese name schema.sql gives
//! the column (`COMMENT ON COLUMN`).

use bianzhi_catalog::schema::{ColumnDef, TableDef};

use super::source::SourceRow;

/// How many leading rows are searched for the header when `--header-row`
/// is not given: government workbooks put a title and notes above it.
pub(crate) const HEADER_SEARCH_ROWS: usize = 10;

/// The header found: its index in the rows, and for each cell position the
/// table column it fills (`None` for an empty header cell).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeaderMap {
    pub row_index: usize,
    pub row_number: u64,
    /// Table column index per cell position.
    pub columns: Vec<Option<usize>>,
    /// The header text per cell position, for messages.
    pub names: Vec<String>,
}

/// The names a column answers to, normalised: its name, its whole comment,
/// the comment without `[代码集 …]`, and without a trailing `(…)` note.
fn accepted_names(column: &ColumnDef) -> Vec<String> {
    let mut names = vec![normalize(&column.name)];
    if let Some(comment) = &column.comment {
        let full = normalize(comment);
        let without_code_set = match full.find("[代码集") {
            Some(at) => full[..at].to_string(),
            None => full.clone(),
        };
        let without_note = match without_code_set.find('(') {
            Some(at) if at > 0 => without_code_set[..at].to_string(),
            _ => without_code_set.clone(),
        };
        names.extend([full, without_code_set, without_note]);
    }
    names.sort();
    names.dedup();
    names
}

/// Header text for comparison: trimmed, without spaces or a byte order
/// mark, full-width brackets as ASCII, ASCII letters lowercased.
pub(crate) fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{feff}')
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '［' | '【' => '[',
            '］' | '】' => ']',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// The table column a header cell names.
fn column_for(table: &TableDef, header: &str) -> Option<usize> {
    let wanted = normalize(header);
    table
        .columns
        .iter()
        .position(|column| accepted_names(column).contains(&wanted))
}

/// Finds and checks the header. `header_row` is 1-based as in the file;
/// without it the first row whose every cell names a column is taken (of
/// the first few), or the first row. Every problem is reported at once:
/// unknown names, a column named twice, required columns missing.
pub(crate) fn find_header(
    table: &TableDef,
    rows: &[SourceRow],
    header_row: Option<u64>,
    header_is_first: bool,
) -> Result<HeaderMap, Vec<String>> {
    let row_index = match header_row {
        Some(number) => rows
            .iter()
            .position(|row| row.number == number)
            .ok_or_else(|| vec![format!("there is no row {number} to read the header from")])?,
        None if header_is_first => 0,
        None => rows
            .iter()
            .take(HEADER_SEARCH_ROWS)
            .position(|row| {
                let named: Vec<&String> = row.cells.iter().flatten().collect();
                !named.is_empty() && named.iter().all(|cell| column_for(table, cell).is_some())
            })
            .or_else(|| {
                rows.iter()
                    .position(|row| row.cells.iter().any(Option::is_some))
            })
            .ok_or_else(|| vec!["the file has no rows".to_string()])?,
    };
    let header = &rows[row_index];
    let mut problems = Vec::new();
    let mut columns = Vec::with_capacity(header.cells.len());
    let mut names = Vec::with_capacity(header.cells.len());
    let mut named_by: Vec<Option<String>> = vec![None; table.columns.len()];
    for (position, cell) in header.cells.iter().enumerate() {
        let Some(text) = cell else {
            columns.push(None);
            names.push(format!("column {}", position + 1));
            continue;
        };
        let text = text.trim().to_string();
        match column_for(table, &text) {
            Some(index) => {
                if let Some(earlier) = &named_by[index] {
                    problems.push(format!(
                        "header \"{text}\" and header \"{earlier}\" both name column {}",
                        table.columns[index].name
                    ));
                }
                named_by[index] = Some(text.clone());
                columns.push(Some(index));
            }
            None => {
                problems.push(format!(
                    "header \"{text}\" (column {}) names no column of {}",
                    position + 1,
                    table.qualified_name()
                ));
                columns.push(None);
            }
        }
        names.push(text);
    }
    for (index, column) in table.columns.iter().enumerate() {
        if named_by[index].is_none() && !column.nullable {
            problems.push(format!(
                "required column {}{} is missing",
                column.name,
                column
                    .comment
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ));
        }
    }
    if problems.iter().any(|p| p.contains("names no column")) {
        problems.push(format!(
            "the columns of {} are: {}",
            table.qualified_name(),
            table
                .columns
                .iter()
                .map(|c| match &c.comment {
                    Some(comment) => format!("{} ({comment})", c.name),
                    None => c.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(HeaderMap {
            row_index,
            row_number: header.number,
            columns,
            names,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bianzhi_catalog::schema::Catalog;

    fn row(number: u64, cells: &[&str]) -> SourceRow {
        SourceRow {
            number,
            cells: cells
                .iter()
                .map(|c| (!c.is_empty()).then(|| c.to_string()))
                .collect(),
        }
    }

    #[test]
    fn chinese_names_and_title_rows() {
        let table = Catalog::builtin()
            .unwrap()
            .table("external_roster")
            .unwrap();
        let rows = [
            row(1, &["2024年1月财政发薪明细", "", ""]),
            row(2, &["制表单位：市财政局", "", ""]),
            row(
                3,
                &[
                    "数据来源",
                    "所属期",
                    "公民身份号码摘要",
                    "项目",
                    "金额（元）",
                    "",
                ],
            ),
            row(4, &["finance", "2024-01-01", "abc", "salary", "100", ""]),
        ];
        let header = find_header(table, &rows, None, false).unwrap();
        assert_eq!(header.row_number, 3);
        let named: Vec<Option<&str>> = header
            .columns
            .iter()
            .map(|c| c.map(|i| table.columns[i].name.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                Some("source"),
                Some("period"),
                Some("id_hash"),
                Some("item"),
                Some("amount"),
                None
            ]
        );
        // The same with --header-row 3, and English names.
        assert_eq!(find_header(table, &rows, Some(3), false).unwrap(), header);
        let english = [row(1, &["SOURCE", "period", "id_hash", "item"])];
        assert!(find_header(table, &english, None, false).is_ok());
    }

    #[test]
    fn every_header_problem_at_once() {
        let table = Catalog::builtin()
            .unwrap()
            .table("external_roster")
            .unwrap();
        let rows = [row(1, &["来源", "所属期", "period", "项目"])];
        let problems = find_header(table, &rows, Some(1), false).unwrap_err();
        let text = problems.join("\n");
        assert!(
            text.contains("header \"来源\" (column 1) names no column"),
            "{text}"
        );
        assert!(
            text.contains("\"period\" and header \"所属期\" both name column period"),
            "{text}"
        );
        assert!(text.contains("required column source (数据来源"), "{text}");
        assert!(text.contains("required column id_hash"), "{text}");
        assert!(
            text.contains("the columns of external_roster are: source"),
            "{text}"
        );
        assert!(find_header(table, &rows, Some(9), false).is_err());
    }
}
