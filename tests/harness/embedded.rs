//! The in-process engine for .slt files: a fresh data directory and a bianzhi
//! session, results turned into [`Value`]s.

use async_trait::async_trait;
use bianzhi_engine::session::Output;
use bianzhi_engine::{Engine, EngineOptions, Session, SessionIdentity, Settings};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::value::{render, Value};

/// Partitions used by every .slt run, so plans and results do not depend on the machine.
pub const TARGET_PARTITIONS: usize = 4;

pub struct Embedded {
    session: Session,
    _dir: tempfile::TempDir,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl Embedded {
    pub async fn new() -> Result<Self, EngineError> {
        let dir = tempfile::tempdir().map_err(|e| EngineError(e.to_string()))?;
        let location = dir.path().join("data");
        let engine = Engine::open_with(
            location.to_str().unwrap_or_default(),
            EngineOptions {
                target_partitions: Some(TARGET_PARTITIONS),
                ..EngineOptions::default()
            },
        )
        .await
        .map_err(|e| EngineError(e.to_string()))?;
        let session = Session::new(&engine, Settings::default(), SessionIdentity::default())
            .map_err(|e| EngineError(e.to_string()))?;
        Ok(Embedded { session, _dir: dir })
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Embedded {
    type Error = EngineError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let output = self
            .session
            .run_one(sql)
            .await
            .map_err(|e| EngineError(format!("[{}] {}", e.code, e.message)))?;
        match output {
            Output::Rows { schema, batches } => {
                let types = schema
                    .fields()
                    .iter()
                    .map(|f| column_type(f.data_type()))
                    .collect();
                let mut rows = Vec::new();
                for batch in &batches {
                    rows.extend(batch_rows(batch).map_err(EngineError)?);
                }
                Ok(DBOutput::Rows { types, rows })
            }
            Output::Count { rows, .. } => Ok(DBOutput::StatementComplete(rows)),
            Output::Command { .. } => Ok(DBOutput::StatementComplete(0)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "embedded"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

pub fn column_type(data_type: &DataType) -> DefaultColumnType {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => DefaultColumnType::FloatingPoint,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

fn batch_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>, String> {
    let mut rows = vec![Vec::with_capacity(batch.num_columns()); batch.num_rows()];
    for column in batch.columns() {
        for (row, out) in rows.iter_mut().enumerate() {
            out.push(render(&cell(column, row)?));
        }
    }
    Ok(rows)
}

fn cell(array: &ArrayRef, row: usize) -> Result<Value, String> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let scalar = ScalarValue::try_from_array(array, row).map_err(|e| e.to_string())?;
    Ok(scalar_value(&scalar))
}

pub fn scalar_value(scalar: &ScalarValue) -> Value {
    use ScalarValue as S;
    if scalar.is_null() {
        return Value::Null;
    }
    match scalar {
        S::Boolean(Some(b)) => Value::Bool(*b),
        S::Int8(Some(v)) => Value::Int(i128::from(*v)),
        S::Int16(Some(v)) => Value::Int(i128::from(*v)),
        S::Int32(Some(v)) => Value::Int(i128::from(*v)),
        S::Int64(Some(v)) => Value::Int(i128::from(*v)),
        S::UInt8(Some(v)) => Value::Int(i128::from(*v)),
        S::UInt16(Some(v)) => Value::Int(i128::from(*v)),
        S::UInt32(Some(v)) => Value::Int(i128::from(*v)),
        S::UInt64(Some(v)) => Value::Int(i128::from(*v)),
        S::Float32(Some(v)) => Value::Float(f64::from(*v)),
        S::Float64(Some(v)) => Value::Float(*v),
        S::Decimal128(Some(_), _, _) => Value::Decimal(scalar.to_string()),
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) => Value::Text(s.clone()),
        S::Date32(Some(_)) => Value::Date(scalar.to_string()),
        S::TimestampMicrosecond(Some(v), tz) => {
            if tz.is_some() {
                Value::TimestampUtc(*v)
            } else {
                Value::Timestamp(*v)
            }
        }
        S::TimestampMillisecond(Some(v), tz) => {
            if tz.is_some() {
                Value::TimestampUtc(v * 1000)
            } else {
                Value::Timestamp(v * 1000)
            }
        }
        S::TimestampNanosecond(Some(v), tz) => {
            if tz.is_some() {
                Value::TimestampUtc(v / 1000)
            } else {
                Value::Timestamp(v / 1000)
            }
        }
        S::TimestampSecond(Some(v), tz) => {
            if tz.is_some() {
                Value::TimestampUtc(v * 1_000_000)
            } else {
                Value::Timestamp(v * 1_000_000)
            }
        }
        S::List(list) => list_values(list.value(0)),
        S::LargeList(list) => list_values(list.value(0)),
        other => Value::Text(other.to_string()),
    }
}

fn list_values(values: ArrayRef) -> Value {
    let items = (0..values.len())
        .map(|i| cell(&values, i).unwrap_or(Value::Null))
        .collect();
    Value::List(items)
}
