//! Record batches to PostgreSQL rows (text or binary per column) and to COPY
//! data, streamed: a batch is encoded when the client is ready for it.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion_postgres::arrow_pg::encoder::{encode_value, Encoder};
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::{
    CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, DataRowEncoder, FieldInfo,
    QueryResponse,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::copy::CopyData;
use datafusion_postgres::pgwire::messages::data::DataRow;
use datafusion_postgres::pgwire::types::format::FormatOptions;
use futures::{stream, Stream, StreamExt};

use super::errors::to_pgwire;
use super::numeric::Numeric;
use crate::session::{CopyFormat, CopyOptions};
use crate::sqlstate::from_datafusion;

/// Field descriptions of a result for a client.
pub fn fields(
    schema: &Schema,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<Arc<Vec<FieldInfo>>> {
    Ok(Arc::new(arrow_schema_to_pg_fields(
        schema,
        format,
        Some(options),
    )?))
}

/// Timestamps with a time zone are shown in the session's zone; an untyped
/// NULL column is text, as PostgreSQL reports `SELECT NULL` (not `unknown`).
pub fn present_schema(schema: &SchemaRef, time_zone: &str) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(unit, Some(_)) => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(*unit, Some(time_zone.into()))),
            DataType::Null => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Utf8)
                .with_nullable(true),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn present_batch(batch: RecordBatch, schema: &SchemaRef) -> PgWireResult<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| -> PgWireResult<ArrayRef> {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                cast(column, field.data_type()).map_err(|e| PgWireError::ApiError(Box::new(e)))
            }
        })
        .collect::<PgWireResult<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| PgWireError::ApiError(Box::new(e)))
}

/// Rows of a result, encoded batch by batch as the client reads them.
pub fn data_rows(
    stream: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    schema: SchemaRef,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    stream
        .map(move |batch| -> Vec<PgWireResult<DataRow>> {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => return vec![Err(to_pgwire(from_datafusion(&e)))],
            };
            match present_batch(batch, &schema) {
                Ok(batch) => encode_rows(&fields, &batch),
                Err(e) => vec![Err(e)],
            }
        })
        .flat_map(stream::iter)
}

/// Every row of a batch as DataRow messages.
fn encode_rows(fields: &Arc<Vec<FieldInfo>>, batch: &RecordBatch) -> Vec<PgWireResult<DataRow>> {
    let schema = batch.schema();
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (index, column) in batch.columns().iter().enumerate() {
            if let Err(e) = encode_cell(
                &mut encoder,
                column,
                row,
                schema.field(index),
                &fields[index],
            ) {
                rows.push(Err(e));
                return rows;
            }
        }
        rows.push(Ok(encoder.take_row()));
    }
    rows
}

/// One value: decimals go through [`Numeric`] so `0.00` keeps its scale in
/// the binary format; everything else through arrow-pg.
fn encode_cell<E: Encoder>(
    encoder: &mut E,
    column: &ArrayRef,
    row: usize,
    field: &Field,
    pg_field: &FieldInfo,
) -> PgWireResult<()> {
    match field.data_type() {
        DataType::Decimal128(_, scale) => {
            let values = column.as_primitive::<Decimal128Type>();
            let value = values.is_valid(row).then(|| Numeric {
                unscaled: values.value(row),
                scale: *scale,
            });
            encoder.encode_field(&value, pg_field)
        }
        _ => encode_value(encoder, column, row, field, pg_field),
    }
}

/// A query response over a record batch stream.
pub fn query_response(
    stream: SendableRecordBatchStream,
    format: &Format,
    options: Arc<FormatOptions>,
    time_zone: &str,
) -> PgWireResult<QueryResponse> {
    let schema = present_schema(&stream.schema(), time_zone);
    let fields = fields(&schema, format, options)?;
    Ok(QueryResponse::new(
        fields.clone(),
        data_rows(stream, fields, schema),
    ))
}

/// A query response over batches already in memory (SHOW).
pub fn batch_response(
    batch: RecordBatch,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<QueryResponse> {
    let fields = fields(&batch.schema(), format, options)?;
    let rows = encode_rows(&fields, &batch);
    Ok(QueryResponse::new(fields, stream::iter(rows)))
}

/// COPY … TO STDOUT in text, CSV or binary format.
pub fn copy_response(
    stream: SendableRecordBatchStream,
    options: &CopyOptions,
    time_zone: &str,
) -> PgWireResult<CopyResponse> {
    let schema = present_schema(&stream.schema(), time_zone);
    let (format, field_format) = match options.format {
        CopyFormat::Binary => (1i8, Format::UnifiedBinary),
        _ => (0i8, Format::UnifiedText),
    };
    let fields = fields(&schema, &field_format, Arc::new(FormatOptions::default()))?;
    let columns = fields.len();
    let make_encoder = {
        let fields = fields.clone();
        let options = options.clone();
        move || match options.format {
            CopyFormat::Binary => CopyEncoder::new_binary(fields.clone()),
            CopyFormat::Csv => CopyEncoder::new_csv(
                fields.clone(),
                CopyCsvOptions {
                    delimiter: options.delimiter.unwrap_or(',').to_string().into(),
                    null_string: options.null.clone().unwrap_or_default().into(),
                    ..CopyCsvOptions::default()
                },
            ),
            CopyFormat::Text => CopyEncoder::new_text(
                fields.clone(),
                CopyTextOptions {
                    delimiter: options.delimiter.unwrap_or('\t').to_string().into(),
                    null_string: options.null.clone().unwrap_or_else(|| "\\N".into()).into(),
                },
            ),
        }
    };
    let header = (options.header && options.format == CopyFormat::Csv).then(|| {
        let delimiter = options.delimiter.unwrap_or(',').to_string();
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| csv_quote(f.name()))
            .collect();
        Ok(CopyData::new(Bytes::from(format!(
            "{}\n",
            names.join(&delimiter)
        ))))
    });
    let mut encoder = make_encoder();
    let body = stream.flat_map(move |batch| {
        let rows: Vec<PgWireResult<CopyData>> = match batch {
            Err(e) => vec![Err(to_pgwire(from_datafusion(&e)))],
            Ok(batch) => match present_batch(batch, &schema) {
                Err(e) => vec![Err(e)],
                Ok(batch) => {
                    let mut out = Vec::with_capacity(batch.num_rows());
                    'rows: for row in 0..batch.num_rows() {
                        for (index, column) in batch.columns().iter().enumerate() {
                            if let Err(e) = encode_cell(
                                &mut encoder,
                                column,
                                row,
                                schema.field(index),
                                &fields[index],
                            ) {
                                out.push(Err(e));
                                break 'rows;
                            }
                        }
                        out.push(Ok(encoder.take_row()));
                    }
                    out
                }
            },
        };
        stream::iter(rows)
    });
    let data = stream::iter(header).chain(body);
    Ok(CopyResponse::new(format, columns, data))
}

fn csv_quote(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}
