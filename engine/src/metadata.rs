//! The `meta` schema: schema.sql's tables and columns with their Chinese names,
//! code sets and keys, as queryable tables (DataFusion's information_schema has
//! no place for comments).

use std::sync::Arc;

use bianzhi_catalog::Catalog;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;

use crate::error::Result;

/// Name of the schema that holds [`tables`] and [`columns`].
pub const META_SCHEMA: &str = "meta";

/// `meta.tables`: table_schema, table_name, comment, primary_key.
pub fn tables(catalog: &Catalog) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("table_schema", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("comment", DataType::Utf8, true),
        Field::new("primary_key", DataType::Utf8, true),
    ]));
    let defs = catalog.tables();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            defs.iter().map(|t| t.schema.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            defs.iter().map(|t| t.name.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            defs.iter().map(|t| t.comment.as_deref()),
        )),
        Arc::new(StringArray::from_iter(defs.iter().map(|t| {
            (!t.primary_key.is_empty()).then(|| t.primary_key.join(", "))
        }))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

/// `meta.columns`: table_schema, table_name, column_name, ordinal_position,
/// data_type (PostgreSQL's name), is_nullable, comment, code_set.
pub fn columns(catalog: &Catalog) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("table_schema", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("ordinal_position", DataType::Int32, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("is_nullable", DataType::Boolean, false),
        Field::new("comment", DataType::Utf8, true),
        Field::new("code_set", DataType::Utf8, true),
    ]));
    let rows: Vec<_> = catalog
        .tables()
        .iter()
        .flat_map(|t| t.columns.iter().enumerate().map(move |(i, c)| (t, i, c)))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(t, _, _)| t.schema.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(t, _, _)| t.name.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, _, c)| c.name.as_str()),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|(_, i, _)| *i as i32 + 1),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, _, c)| c.pg_type.as_str()),
        )),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|(_, _, c)| Some(c.nullable)),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|(_, _, c)| c.comment.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|(_, _, c)| c.code_set.as_deref()),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}
