//! The code sets (代码表) of `sql/dict_code.sql`, loaded into `dict_code` when a data
//! directory is created and used to check code columns.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::{new_empty_array, RecordBatch};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{Expr, SetExpr, Statement, TableObject, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};
use crate::schema::{Catalog, TableDef};

/// The text of `sql/dict_code.sql`, compiled in.
pub const DICT_CODE_SQL: &str = include_str!("../../sql/dict_code.sql");

/// The rows of `dict_code` as one batch with the table's schema.
pub fn dict_code_batch(catalog: &Catalog) -> Result<RecordBatch> {
    let table = catalog.table("dict_code")?;
    values_batch(table, "sql/dict_code.sql", DICT_CODE_SQL)
}

/// Code set name → its codes, for checking code columns.
pub fn code_sets() -> Result<BTreeMap<String, BTreeSet<String>>> {
    let catalog = Catalog::builtin()?;
    let batch = dict_code_batch(catalog)?;
    let sets = batch.column(0);
    let codes = batch.column(2);
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let set = ScalarValue::try_from_array(sets, row)
            .map_err(|e| Error::datafusion("reading dict_code", e))?;
        let code = ScalarValue::try_from_array(codes, row)
            .map_err(|e| Error::datafusion("reading dict_code", e))?;
        if let (ScalarValue::Utf8(Some(set)), ScalarValue::Utf8(Some(code))) = (set, code) {
            map.entry(set).or_default().insert(code);
        }
    }
    Ok(map)
}

/// Turn `INSERT INTO table VALUES (…), …` statements of literals into a batch.
pub fn values_batch(table: &TableDef, file: &str, sql: &str) -> Result<RecordBatch> {
    let fail = |message: String| Error::SchemaDefinition {
        file: file.to_string(),
        message,
    };
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| fail(format!("cannot parse: {e}")))?;
    let schema = table.arrow_schema();
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); table.columns.len()];
    for statement in statements {
        let Statement::Insert(insert) = statement else {
            return Err(fail(format!(
                "only INSERT … VALUES is allowed, found: {statement}"
            )));
        };
        match &insert.table {
            TableObject::TableName(name) if name.to_string() == table.qualified_name() => {}
            other => {
                return Err(fail(format!(
                    "INSERT into {other}, expected {}",
                    table.name
                )))
            }
        }
        let Some(SetExpr::Values(values)) = insert.source.as_ref().map(|q| q.body.as_ref()) else {
            return Err(fail("INSERT without VALUES".into()));
        };
        for (row_number, row) in values.rows.iter().enumerate() {
            if row.len() != table.columns.len() {
                return Err(fail(format!(
                    "row {} has {} values, {} has {} columns",
                    row_number + 1,
                    row.len(),
                    table.name,
                    table.columns.len()
                )));
            }
            for (index, (expr, column)) in row.iter().zip(&table.columns).enumerate() {
                let literal = literal(expr).map_err(|m| {
                    fail(format!(
                        "row {}, column {}: {m}",
                        row_number + 1,
                        column.name
                    ))
                })?;
                let value = literal.cast_to(&column.data_type).map_err(|e| {
                    fail(format!(
                        "row {}, column {}: {e}",
                        row_number + 1,
                        column.name
                    ))
                })?;
                if value.is_null() && !column.nullable {
                    return Err(fail(format!(
                        "row {}, column {} is NOT NULL",
                        row_number + 1,
                        column.name
                    )));
                }
                columns[index].push(value);
            }
        }
    }
    let arrays = columns
        .into_iter()
        .zip(&table.columns)
        .map(|(values, column)| {
            if values.is_empty() {
                Ok(new_empty_array(&column.data_type))
            } else {
                ScalarValue::iter_to_array(values)
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::datafusion(format!("building {}", table.name), e))?;
    RecordBatch::try_new(schema, arrays)
        .map_err(|e| Error::datafusion(format!("building {}", table.name), e))
}

fn literal(expr: &Expr) -> std::result::Result<ScalarValue, String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Ok(ScalarValue::Utf8(Some(s.clone()))),
            Value::Number(n, _) => n
                .parse::<i64>()
                .map(|i| ScalarValue::Int64(Some(i)))
                .or_else(|_| n.parse::<f64>().map(|f| ScalarValue::Float64(Some(f))))
                .map_err(|_| format!("bad number {n}")),
            Value::Boolean(b) => Ok(ScalarValue::Boolean(Some(*b))),
            Value::Null => Ok(ScalarValue::Null),
            other => Err(format!("unsupported literal {other}")),
        },
        other => Err(format!("only literals are allowed, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_code_file_loads_and_covers_every_named_code_set() {
        let catalog = Catalog::builtin().unwrap();
        let batch = dict_code_batch(catalog).unwrap();
        assert!(batch.num_rows() > 150, "{} rows", batch.num_rows());
        let sets = code_sets().unwrap();
        assert!(sets["quota_type"].contains("政法专项"));
        assert_eq!(sets["power_type"].len(), 11);
        // Every code set a column names must exist.
        for table in catalog.tables() {
            for column in &table.columns {
                if let Some(set) = &column.code_set {
                    assert!(
                        sets.contains_key(set),
                        "{}.{} names unknown set {set}",
                        table.name,
                        column.name
                    );
                }
            }
        }
    }

    #[test]
    fn bad_rows_are_reported_with_row_and_column() {
        let catalog = Catalog::builtin().unwrap();
        let table = catalog.table("dict_code").unwrap();
        let err = values_batch(
            table,
            "x.sql",
            "INSERT INTO dict_code VALUES ('a','b','c',1,NULL,NULL);",
        )
        .unwrap_err();
        assert!(err.to_string().contains("row 1 has 6 values"), "{err}");
        let err = values_batch(
            table,
            "x.sql",
            "INSERT INTO dict_code VALUES ('a','b',NULL,1,NULL,NULL,NULL);",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("row 1, column code is NOT NULL"),
            "{err}"
        );
        let err = values_batch(
            table,
            "x.sql",
            "INSERT INTO dict_code VALUES ('a','b','c','x',NULL,NULL,NULL);",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("row 1, column sort_order"),
            "{err}"
        );
    }
}
