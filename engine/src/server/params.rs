//! Bound parameters ($1, $2 …) to DataFusion values: text or binary, typed by
//! the client's Parse types or else by what the plan infers, NULLs kept in place.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion_postgres::pgwire::api::portal::Portal;
use datafusion_postgres::pgwire::api::results::FieldFormat;
use datafusion_postgres::pgwire::api::Type;
use postgres_types::FromSql;

use crate::sqlstate::{code, SqlError};

type Boxed = Box<dyn std::error::Error + Sync + Send>;

fn invalid(index: usize, message: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        code::INVALID_TEXT_REPRESENTATION,
        format!("invalid value for parameter ${}: {message}", index + 1),
    )
}

/// The parameters of a portal as DataFusion values, one per placeholder.
pub fn bind<S>(portal: &Portal<S>, inferred: &[Option<DataType>]) -> Result<ParamValues, SqlError> {
    let count = inferred.len().max(portal.parameters.len());
    let mut values = Vec::with_capacity(count);
    for index in 0..count {
        let declared = portal
            .statement
            .parameter_types
            .get(index)
            .cloned()
            .flatten();
        let target = inferred.get(index).cloned().flatten();
        let bytes = portal.parameters.get(index).cloned().flatten();
        let binary = index < portal.parameters.len()
            && matches!(
                portal
                    .parameter_format
                    .format_for(index.min(portal.parameters.len().saturating_sub(1))),
                FieldFormat::Binary
            );
        let value = match bytes {
            None => {
                let data_type = target
                    .clone()
                    .or_else(|| declared.as_ref().and_then(arrow_type))
                    .unwrap_or(DataType::Utf8);
                ScalarValue::try_from(&data_type).map_err(|e| invalid(index, e))?
            }
            Some(bytes) if binary => {
                let ty = declared
                    .clone()
                    .or_else(|| target.as_ref().and_then(pg_type))
                    .unwrap_or(Type::TEXT);
                decode_binary(&ty, &bytes).map_err(|e| invalid(index, e))?
            }
            Some(bytes) => ScalarValue::Utf8(Some(
                String::from_utf8(bytes.to_vec()).map_err(|_| invalid(index, "not UTF-8"))?,
            )),
        };
        // Cast to what the plan expects (text '42' to bigint, and so on).
        let wanted = target.or_else(|| declared.as_ref().and_then(arrow_type));
        let value = match wanted {
            Some(data_type) if value.data_type() != data_type => {
                value.cast_to(&data_type).map_err(|e| invalid(index, e))?
            }
            _ => value,
        };
        values.push(value);
    }
    Ok(ParamValues::List(
        values.into_iter().map(Into::into).collect(),
    ))
}

/// The Arrow type a PostgreSQL parameter type decodes to.
fn arrow_type(ty: &Type) -> Option<DataType> {
    Some(match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DataType::Utf8,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => {
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
        }
        Type::TIMESTAMPTZ => DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        ),
        _ => return None,
    })
}

fn pg_type(data_type: &DataType) -> Option<Type> {
    datafusion_postgres::arrow_pg::datatypes::into_pg_type(data_type).ok()
}

fn decode_binary(ty: &Type, bytes: &[u8]) -> Result<ScalarValue, Boxed> {
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(Some(bool::from_sql(ty, bytes)?)),
        Type::INT2 => ScalarValue::Int16(Some(i16::from_sql(ty, bytes)?)),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_sql(ty, bytes)?)),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_sql(ty, bytes)?)),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_sql(ty, bytes)?)),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_sql(ty, bytes)?)),
        Type::DATE => {
            let date = chrono::NaiveDate::from_sql(ty, bytes)?;
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("epoch")?;
            ScalarValue::Date32(Some((date - epoch).num_days() as i32))
        }
        Type::TIMESTAMP => {
            let t = chrono::NaiveDateTime::from_sql(ty, bytes)?;
            ScalarValue::TimestampMicrosecond(Some(t.and_utc().timestamp_micros()), None)
        }
        Type::TIMESTAMPTZ => {
            let t = chrono::DateTime::<chrono::Utc>::from_sql(ty, bytes)?;
            ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
        }
        _ => ScalarValue::Utf8(Some(String::from_utf8(bytes.to_vec())?)),
    })
}
