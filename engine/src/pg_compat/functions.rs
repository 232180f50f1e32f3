//! PostgreSQL functions clients call while connecting or describing objects:
//! `version()`, `current_setting`, `obj_description`, `col_description`,
//! `to_regtype`, `pg_is_in_recovery` and friends.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, TypeSignature, Volatility};
use datafusion::scalar::ScalarValue;

use super::fn_udf::FnUdf;
use crate::settings::{version_string, Settings};

/// Object comments: (objoid, classoid, objsubid) → description.
pub type Descriptions = HashMap<(i64, i64, i32), String>;

/// classoid of pg_class, pg_proc, pg_type, pg_namespace, pg_database.
pub const PG_CLASS: i64 = 1259;
pub const PG_PROC: i64 = 1255;
const PG_TYPE: i64 = 1247;
const PG_NAMESPACE: i64 = 2615;
const PG_DATABASE: i64 = 1262;

/// PostgreSQL's fixed OID of a system catalog that objects with comments
/// live in, by name with or without `pg_catalog.`.
pub fn system_catalog_oid(catalog: &str) -> Option<i64> {
    match catalog.trim().trim_start_matches("pg_catalog.") {
        "pg_class" => Some(PG_CLASS),
        "pg_proc" => Some(PG_PROC),
        "pg_type" => Some(PG_TYPE),
        "pg_namespace" => Some(PG_NAMESPACE),
        "pg_database" => Some(PG_DATABASE),
        _ => None,
    }
}

/// Arguments as arrays of the batch's length.
fn arrays(args: &datafusion::logical_expr::ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    ColumnarValue::values_to_arrays(&args.args)
}

fn as_i64(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(array, &DataType::Int64)?)
}

fn as_text(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(array, &DataType::Utf8)?)
}

/// `version()`: PostgreSQL's format, naming bianzhi.
pub fn version() -> ScalarUDF {
    FnUdf::nullary("version", DataType::Utf8, Volatility::Stable, |_| {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            version_string(),
        ))))
    })
}

/// `current_setting(name [, missing_ok])`: this session's setting.
pub fn current_setting(settings: Settings) -> ScalarUDF {
    let signature = Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
        ],
        Volatility::Stable,
    );
    FnUdf::udf("current_setting", signature, DataType::Utf8, move |args| {
        let arrays = arrays(args)?;
        let names = as_text(&arrays[0])?;
        let names = names.as_string::<i32>();
        let missing_ok = arrays.get(1).map(|a| a.as_boolean().clone());
        let mut out = Vec::with_capacity(names.len());
        for row in 0..names.len() {
            if names.is_null(row) {
                out.push(None);
                continue;
            }
            match settings.get(names.value(row)) {
                Ok(value) => out.push(Some(value)),
                Err(e) => {
                    let ok = missing_ok
                        .as_ref()
                        .is_some_and(|m| m.is_valid(row) && m.value(row));
                    if ok {
                        out.push(None);
                    } else {
                        return Err(DataFusionError::Plan(e.to_string()));
                    }
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    })
}

/// `obj_description(oid [, catalog])`.
pub fn obj_description(descriptions: Arc<Descriptions>) -> ScalarUDF {
    let signature = Signature::one_of(
        vec![TypeSignature::Any(1), TypeSignature::Any(2)],
        Volatility::Stable,
    );
    FnUdf::udf("obj_description", signature, DataType::Utf8, move |args| {
        let arrays = arrays(args)?;
        let oids = as_i64(&arrays[0])?;
        let oids = oids.as_primitive::<Int64Type>();
        let catalogs = arrays.get(1).map(as_text).transpose()?;
        let mut out = Vec::with_capacity(oids.len());
        for row in 0..oids.len() {
            if oids.is_null(row) {
                out.push(None);
                continue;
            }
            let oid = oids.value(row);
            let class = match &catalogs {
                Some(c) => {
                    let c = c.as_string::<i32>();
                    if c.is_null(row) {
                        out.push(None);
                        continue;
                    }
                    system_catalog_oid(c.value(row))
                }
                None => None,
            };
            let found = match class {
                Some(class) => descriptions.get(&(oid, class, 0)).cloned(),
                None => [PG_CLASS, PG_PROC, PG_TYPE, PG_NAMESPACE]
                    .iter()
                    .find_map(|class| descriptions.get(&(oid, *class, 0)).cloned()),
            };
            out.push(found);
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    })
}

/// `col_description(table_oid, column_number)`.
pub fn col_description(descriptions: Arc<Descriptions>) -> ScalarUDF {
    let signature = Signature::any(2, Volatility::Stable);
    FnUdf::udf("col_description", signature, DataType::Utf8, move |args| {
        let arrays = arrays(args)?;
        let oids = as_i64(&arrays[0])?;
        let oids = oids.as_primitive::<Int64Type>();
        let columns = as_i64(&arrays[1])?;
        let columns = columns.as_primitive::<Int64Type>();
        let out: StringArray = (0..oids.len())
            .map(|row| {
                if oids.is_null(row) || columns.is_null(row) {
                    return None;
                }
                let column = i32::try_from(columns.value(row)).ok()?;
                descriptions
                    .get(&(oids.value(row), PG_CLASS, column))
                    .cloned()
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    })
}

/// `shobj_description(oid, catalog)`: shared objects have no comments here.
pub fn shobj_description() -> ScalarUDF {
    FnUdf::udf(
        "shobj_description",
        Signature::any(2, Volatility::Stable),
        DataType::Utf8,
        |args| {
            Ok(ColumnarValue::Array(Arc::new(StringArray::new_null(
                args.number_rows.max(1),
            ))))
        },
    )
}

/// `regclass_oid(name)`: the oid a `name::regclass` cast gives, for names
/// that arrive as parameters (SQLAlchemy binds `'pg_catalog.pg_class'`).
/// System catalogs give PostgreSQL's fixed OIDs, as pg_description does;
/// an unqualified name is looked up along the schemas a session searches.
pub fn regclass_oid(relations: Arc<HashMap<String, i64>>) -> ScalarUDF {
    const SEARCHED: [&str; 5] = [
        "pg_catalog",
        "public",
        "generator",
        "meta",
        "information_schema",
    ];
    FnUdf::udf(
        "regclass_oid",
        Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        DataType::Int32,
        move |args| {
            let arrays = arrays(args)?;
            let names = as_text(&arrays[0])?;
            let names = names.as_string::<i32>();
            let out: Int32Array = (0..names.len())
                .map(|row| {
                    if names.is_null(row) {
                        return None;
                    }
                    let name = names.value(row).trim().replace('"', "");
                    if let Some(oid) = system_catalog_oid(&name) {
                        return Some(oid as i32);
                    }
                    let found = if name.contains('.') {
                        relations.get(&name).copied()
                    } else {
                        SEARCHED
                            .iter()
                            .find_map(|schema| relations.get(&format!("{schema}.{name}")).copied())
                    };
                    found.map(|oid| oid as i32)
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        },
    )
}

/// `pg_typeof(value)`: the PostgreSQL name of the value's type.
pub fn pg_typeof() -> ScalarUDF {
    FnUdf::udf(
        "pg_typeof",
        Signature::any(1, Volatility::Immutable),
        DataType::Utf8,
        |args| {
            let name = args
                .arg_fields
                .first()
                .map(|field| postgres_type_name(field.data_type()))
                .unwrap_or_else(|| "unknown".to_string());
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
        },
    )
}

/// How PostgreSQL's `format_type` names the type a column of `data_type` has.
pub fn postgres_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 | DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => {
            "numeric".into()
        }
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::List(field) | DataType::LargeList(field) | DataType::FixedSizeList(field, _) => {
            format!("{}[]", postgres_type_name(field.data_type()))
        }
        DataType::Struct(_) => "record".into(),
        other => other.to_string().to_lowercase(),
    }
}

/// `to_regtype(name)`: the type's oid, or NULL when there is no such type.
pub fn to_regtype(types: Arc<HashMap<String, i32>>) -> ScalarUDF {
    FnUdf::udf(
        "to_regtype",
        Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        DataType::Int32,
        move |args| {
            let arrays = arrays(args)?;
            let names = as_text(&arrays[0])?;
            let names = names.as_string::<i32>();
            let out: Int32Array = (0..names.len())
                .map(|row| {
                    if names.is_null(row) {
                        return None;
                    }
                    let name = names
                        .value(row)
                        .trim()
                        .trim_start_matches("pg_catalog.")
                        .to_ascii_lowercase();
                    types.get(type_alias(&name)).copied()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        },
    )
}

/// SQL spellings of type names → pg_type.typname.
fn type_alias(name: &str) -> &str {
    match name {
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "smallint" => "int2",
        "boolean" => "bool",
        "real" => "float4",
        "double precision" => "float8",
        "character varying" => "varchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "decimal" => "numeric",
        other => other,
    }
}

/// `pg_get_serial_sequence(table, column)`: no sequences, always NULL.
pub fn pg_get_serial_sequence() -> ScalarUDF {
    FnUdf::udf(
        "pg_get_serial_sequence",
        Signature::any(2, Volatility::Stable),
        DataType::Utf8,
        |args| {
            Ok(ColumnarValue::Array(Arc::new(StringArray::new_null(
                args.number_rows.max(1),
            ))))
        },
    )
}

/// `pg_is_in_recovery()`: never a standby.
pub fn pg_is_in_recovery() -> ScalarUDF {
    FnUdf::nullary(
        "pg_is_in_recovery",
        DataType::Boolean,
        Volatility::Stable,
        |_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(false)))),
    )
}

/// `pg_postmaster_start_time()`: when this server started.
pub fn pg_postmaster_start_time(started_micros: i64) -> ScalarUDF {
    FnUdf::nullary(
        "pg_postmaster_start_time",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Volatility::Stable,
        move |_| {
            Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
                Some(started_micros),
                Some("UTC".into()),
            )))
        },
    )
}

/// `pg_advisory_unlock_all()`: there are no advisory locks to release.
pub fn pg_advisory_unlock_all() -> ScalarUDF {
    FnUdf::nullary(
        "pg_advisory_unlock_all",
        DataType::Boolean,
        Volatility::Volatile,
        |_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None))),
    )
}

/// `session_user` / `current_user`: the user this session logged in as.
pub fn session_user(user: String) -> ScalarUDF {
    FnUdf::nullary(
        "session_user",
        DataType::Utf8,
        Volatility::Stable,
        move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(user.clone())))),
    )
}

/// `pg_backend_pid()`: this connection's process id as clients see it.
pub fn pg_backend_pid(pid: i32) -> ScalarUDF {
    FnUdf::nullary(
        "pg_backend_pid",
        DataType::Int32,
        Volatility::Stable,
        move |_| Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(pid)))),
    )
}

/// `inet_server_addr()` / `inet_client_addr()`-style functions that answer NULL.
pub fn null_text(name: &'static str) -> ScalarUDF {
    FnUdf::nullary(name, DataType::Utf8, Volatility::Stable, |_| {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    })
}

/// `pg_function_is_visible(oid)` and `pg_type_is_visible(oid)`: everything is visible.
pub fn always_visible(name: &'static str) -> ScalarUDF {
    FnUdf::udf(
        name,
        Signature::any(1, Volatility::Stable),
        DataType::Boolean,
        |args| {
            Ok(ColumnarValue::Array(Arc::new(
                datafusion::arrow::array::BooleanArray::from(vec![true; args.number_rows.max(1)]),
            )))
        },
    )
}

/// `pg_size_pretty(bytes)`: 8192 → `8192 bytes`, 10 MiB → `10 MB`, as PostgreSQL does.
pub fn pg_size_pretty() -> ScalarUDF {
    FnUdf::udf(
        "pg_size_pretty",
        Signature::any(1, Volatility::Immutable),
        DataType::Utf8,
        |args| {
            let arrays = arrays(args)?;
            let sizes = as_i64(&arrays[0])?;
            let sizes = sizes.as_primitive::<Int64Type>();
            let out: StringArray = (0..sizes.len())
                .map(|row| sizes.is_valid(row).then(|| pretty_size(sizes.value(row))))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        },
    )
}

fn pretty_size(bytes: i64) -> String {
    // PostgreSQL switches unit when the value reaches 10240 of the smaller one.
    let mut value = bytes as f64;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if value.abs() < 10240.0 || unit == "TB" {
            return format!("{} {unit}", value.round() as i64);
        }
        value /= 1024.0;
    }
    format!("{bytes} bytes")
}

/// Functions of a relation or function oid that answer a fixed number (sizes: 0).
pub fn zero_of_oid(name: &'static str) -> ScalarUDF {
    FnUdf::udf(
        name,
        Signature::any(1, Volatility::Stable),
        DataType::Int64,
        |args| {
            Ok(ColumnarValue::Array(Arc::new(
                datafusion::arrow::array::Int64Array::from(vec![0; args.number_rows.max(1)]),
            )))
        },
    )
}

/// `pg_get_function_sqlbody(oid)` (psql `\df+`): no function here has a SQL
/// body, so it is NULL.
pub fn null_text_of_oid(name: &'static str) -> ScalarUDF {
    FnUdf::udf(
        name,
        Signature::any(1, Volatility::Stable),
        DataType::Utf8,
        |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
    )
}

/// `pg_get_function_result(oid)` / `pg_get_function_arguments(oid)`: looked up in `signatures`.
pub fn function_signature(
    name: &'static str,
    signatures: Arc<HashMap<i64, (String, String)>>,
    result: bool,
) -> ScalarUDF {
    FnUdf::udf(
        name,
        Signature::any(1, Volatility::Stable),
        DataType::Utf8,
        move |args| {
            let arrays = arrays(args)?;
            let oids = as_i64(&arrays[0])?;
            let oids = oids.as_primitive::<Int64Type>();
            let out: StringArray = (0..oids.len())
                .map(|row| {
                    if oids.is_null(row) {
                        return None;
                    }
                    signatures
                        .get(&oids.value(row))
                        .map(|(returns, arguments)| {
                            if result {
                                returns.clone()
                            } else {
                                arguments.clone()
                            }
                        })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        },
    )
}

/// `json_build_object(key, value, …)` as JSON text (SQLAlchemy reads column
/// identity and collation options with it).
pub fn json_build_object() -> ScalarUDF {
    FnUdf::udf(
        "json_build_object",
        Signature::variadic_any(Volatility::Immutable),
        DataType::Utf8,
        |args| {
            let arrays = arrays(args)?;
            if arrays.len() % 2 != 0 {
                return Err(DataFusionError::Plan(
                    "json_build_object needs an even number of arguments".into(),
                ));
            }
            let rows = arrays.first().map_or(args.number_rows.max(1), |a| a.len());
            let mut out = Vec::with_capacity(rows);
            for row in 0..rows {
                let mut object = serde_json::Map::new();
                for pair in arrays.chunks(2) {
                    let key = ScalarValue::try_from_array(&pair[0], row)?;
                    let value = ScalarValue::try_from_array(&pair[1], row)?;
                    let key = if key.is_null() {
                        "null".to_string()
                    } else {
                        key.to_string()
                    };
                    object.insert(key, json_value(&value));
                }
                out.push(serde_json::Value::Object(object).to_string());
            }
            Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
        },
    )
}

fn json_value(value: &ScalarValue) -> serde_json::Value {
    use serde_json::Value as J;
    if value.is_null() {
        return J::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => J::Bool(*b),
        ScalarValue::Int8(Some(v)) => J::from(*v),
        ScalarValue::Int16(Some(v)) => J::from(*v),
        ScalarValue::Int32(Some(v)) => J::from(*v),
        ScalarValue::Int64(Some(v)) => J::from(*v),
        ScalarValue::UInt32(Some(v)) => J::from(*v),
        ScalarValue::UInt64(Some(v)) => J::from(*v),
        ScalarValue::Float64(Some(v)) => {
            serde_json::Number::from_f64(*v).map_or(J::Null, J::Number)
        }
        ScalarValue::Float32(Some(v)) => {
            serde_json::Number::from_f64(f64::from(*v)).map_or(J::Null, J::Number)
        }
        other => J::String(other.to_string()),
    }
}
