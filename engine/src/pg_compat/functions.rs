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
const PG_PROC: i64 = 1255;
const PG_TYPE: i64 = 1247;
const PG_NAMESPACE: i64 = 2615;
const PG_DATABASE: i64 = 1262;

fn class_oid(catalog: &str) -> Option<i64> {
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
    FnUdf::new("current_setting", signature, DataType::Utf8, move |args| {
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
    FnUdf::new("obj_description", signature, DataType::Utf8, move |args| {
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
                    class_oid(c.value(row))
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
    FnUdf::new("col_description", signature, DataType::Utf8, move |args| {
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
    FnUdf::new(
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

/// `to_regtype(name)`: the type's oid, or NULL when there is no such type.
pub fn to_regtype(types: Arc<HashMap<String, i32>>) -> ScalarUDF {
    FnUdf::new(
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
    FnUdf::new(
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
    FnUdf::new(
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
    FnUdf::new(
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
    FnUdf::new(
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

/// `pg_get_function_result(oid)` / `pg_get_function_arguments(oid)`: looked up in `signatures`.
pub fn function_signature(
    name: &'static str,
    signatures: Arc<HashMap<i64, (String, String)>>,
    result: bool,
) -> ScalarUDF {
    FnUdf::new(
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
