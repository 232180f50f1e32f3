//! PostgreSQL's names for the Arrow types bianzhi's tables and results use.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// (data_type as information_schema spells it, udt_name as pg_type names it).
pub fn pg_type_names(data_type: &DataType) -> (String, &'static str) {
    match data_type {
        DataType::Boolean => ("boolean".into(), "bool"),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => ("smallint".into(), "int2"),
        DataType::Int32 | DataType::UInt16 => ("integer".into(), "int4"),
        DataType::Int64 | DataType::UInt32 => ("bigint".into(), "int8"),
        DataType::UInt64 => ("numeric".into(), "numeric"),
        DataType::Float16 | DataType::Float32 => ("real".into(), "float4"),
        DataType::Float64 => ("double precision".into(), "float8"),
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => ("numeric".into(), "numeric"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ("text".into(), "text"),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => ("bytea".into(), "bytea"),
        DataType::Date32 | DataType::Date64 => ("date".into(), "date"),
        DataType::Timestamp(_, Some(_)) => ("timestamp with time zone".into(), "timestamptz"),
        DataType::Timestamp(_, None) => ("timestamp without time zone".into(), "timestamp"),
        DataType::Time32(_) | DataType::Time64(_) => ("time without time zone".into(), "time"),
        DataType::Interval(_) | DataType::Duration(_) => ("interval".into(), "interval"),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            ("ARRAY".into(), "_text")
        }
        DataType::Struct(_) => ("USER-DEFINED".into(), "record"),
        DataType::Dictionary(_, value) => pg_type_names(value),
        _ => ("text".into(), "text"),
    }
}

/// Numeric precision and scale columns of information_schema.columns.
pub fn numeric_precision(data_type: &DataType) -> (Option<i32>, Option<i32>, Option<i32>) {
    match data_type {
        DataType::Int16 => (Some(16), Some(2), Some(0)),
        DataType::Int32 => (Some(32), Some(2), Some(0)),
        DataType::Int64 => (Some(64), Some(2), Some(0)),
        DataType::Float32 => (Some(24), Some(2), None),
        DataType::Float64 => (Some(53), Some(2), None),
        DataType::Decimal128(p, s) => (Some(i32::from(*p)), Some(10), Some(i32::from(*s))),
        _ => (None, None, None),
    }
}

/// datetime_precision of information_schema.columns.
pub fn datetime_precision(data_type: &DataType) -> Option<i32> {
    match data_type {
        DataType::Date32 | DataType::Date64 => Some(0),
        DataType::Timestamp(TimeUnit::Second, _) => Some(0),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(3),
        DataType::Timestamp(_, _) => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_sql_types_get_their_postgres_names() {
        assert_eq!(pg_type_names(&DataType::Int64).0, "bigint");
        assert_eq!(
            pg_type_names(&DataType::Utf8View),
            ("text".to_string(), "text")
        );
        assert_eq!(
            pg_type_names(&DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
            .0,
            "timestamp with time zone"
        );
        assert_eq!(pg_type_names(&DataType::Decimal128(12, 2)).1, "numeric");
        assert_eq!(
            numeric_precision(&DataType::Decimal128(12, 2)),
            (Some(12), Some(10), Some(2))
        );
    }
}
