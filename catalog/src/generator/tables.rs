//! Turning the generator's rows into Arrow batches with the schema.sql schemas.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use super::calendar::days;
use crate::error::{Error, Result};
use crate::schema::TableDef;

/// One cell.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Bool(bool),
    Date(NaiveDate),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
    Real(f64),
    /// Hundredths (for numeric(p,2)).
    Cents(i128),
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(value: Option<&'a str>) -> Self {
        value.map_or(Cell::Null, Cell::Text)
    }
}

impl From<Option<NaiveDate>> for Cell<'_> {
    fn from(value: Option<NaiveDate>) -> Self {
        value.map_or(Cell::Null, Cell::Date)
    }
}

impl From<Option<i64>> for Cell<'_> {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Cell::Null, Cell::Int)
    }
}

/// Builds batches of one table row by row, checking each cell against the column type.
pub struct TableBuilder {
    name: String,
    schema: SchemaRef,
    columns: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
}

impl TableBuilder {
    pub fn new(def: &TableDef) -> Result<Self> {
        let schema = def.arrow_schema();
        let columns = schema
            .fields()
            .iter()
            .map(|f| builder_for(f.data_type(), &def.name))
            .collect::<Result<Vec<_>>>()?;
        Ok(TableBuilder {
            name: def.qualified_name(),
            schema,
            columns,
            rows: 0,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Append one row; the cells must match the columns in number and type.
    pub fn push(&mut self, cells: &[Cell<'_>]) -> Result<()> {
        if cells.len() != self.columns.len() {
            return Err(Error::Generator(format!(
                "{}: row has {} cells, table has {} columns",
                self.name,
                cells.len(),
                self.columns.len()
            )));
        }
        // Check the whole row first so a bad row leaves the builder untouched.
        for (field, cell) in self.schema.fields().iter().zip(cells) {
            if matches!(cell, Cell::Null) && !field.is_nullable() {
                return Err(Error::Generator(format!(
                    "{}.{} is NOT NULL",
                    self.name,
                    field.name()
                )));
            }
            if !fits(field.data_type(), *cell) {
                return Err(Error::Generator(format!(
                    "{}.{}: a {:?} does not fit {}",
                    self.name,
                    field.name(),
                    cell,
                    field.data_type()
                )));
            }
        }
        for (index, (builder, cell)) in self.columns.iter_mut().zip(cells).enumerate() {
            if !append(
                builder.as_mut(),
                self.schema.field(index).data_type(),
                *cell,
            ) {
                return Err(Error::Generator(format!(
                    "{}: column {index} has the wrong builder",
                    self.name
                )));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows so far as a batch; the builder starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .zip(self.schema.fields())
            .map(|(builder, field)| {
                let array = builder.finish();
                match field.data_type() {
                    DataType::Decimal128(p, s) => {
                        let decimal = array
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::Decimal128Array>()
                            .map(|a| a.clone().with_precision_and_scale(*p, *s));
                        match decimal {
                            Some(Ok(a)) => Ok(Arc::new(a) as ArrayRef),
                            Some(Err(e)) => {
                                Err(Error::datafusion(format!("building {}", self.name), e))
                            }
                            None => Ok(array),
                        }
                    }
                    DataType::Timestamp(_, Some(tz)) => {
                        let ts = array
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::TimestampMicrosecondArray>()
                            .map(|a| a.clone().with_timezone(tz.clone()));
                        Ok(ts.map_or(array, |a| Arc::new(a) as ArrayRef))
                    }
                    _ => Ok(array),
                }
            })
            .collect::<Result<_>>()?;
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| Error::datafusion(format!("building {}", self.name), e))
    }
}

fn builder_for(data_type: &DataType, table: &str) -> Result<Box<dyn ArrayBuilder>> {
    Ok(match data_type {
        DataType::Int64 => Box::new(Int64Builder::new()),
        DataType::Int32 => Box::new(Int32Builder::new()),
        DataType::Int16 => Box::new(Int16Builder::new()),
        DataType::Utf8 => Box::new(StringBuilder::new()),
        DataType::Boolean => Box::new(BooleanBuilder::new()),
        DataType::Date32 => Box::new(Date32Builder::new()),
        DataType::Float64 => Box::new(Float64Builder::new()),
        DataType::Decimal128(_, _) => Box::new(Decimal128Builder::new()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Box::new(TimestampMicrosecondBuilder::new())
        }
        other => return Err(Error::Generator(format!("{table}: no builder for {other}"))),
    })
}

fn fits(data_type: &DataType, cell: Cell<'_>) -> bool {
    match (data_type, cell) {
        (_, Cell::Null) => true,
        (DataType::Int64, Cell::Int(_)) => true,
        (DataType::Int32, Cell::Int(v)) => i32::try_from(v).is_ok(),
        (DataType::Int16, Cell::Int(v)) => i16::try_from(v).is_ok(),
        (DataType::Utf8, Cell::Text(_))
        | (DataType::Boolean, Cell::Bool(_))
        | (DataType::Date32, Cell::Date(_))
        | (DataType::Float64, Cell::Real(_))
        | (DataType::Decimal128(_, 2), Cell::Cents(_))
        | (DataType::Timestamp(_, _), Cell::Timestamp(_)) => true,
        _ => false,
    }
}

fn append(builder: &mut dyn ArrayBuilder, data_type: &DataType, cell: Cell<'_>) -> bool {
    let any = builder.as_any_mut();
    macro_rules! put {
        ($builder:ty, $value:expr) => {
            match any.downcast_mut::<$builder>() {
                Some(b) => {
                    match $value {
                        Some(v) => b.append_value(v),
                        None => b.append_null(),
                    }
                    true
                }
                None => false,
            }
        };
    }
    let null = matches!(cell, Cell::Null);
    match (data_type, cell) {
        (DataType::Int64, Cell::Int(v)) => put!(Int64Builder, Some(v)),
        (DataType::Int64, _) if null => put!(Int64Builder, None::<i64>),
        (DataType::Int32, Cell::Int(v)) => match i32::try_from(v) {
            Ok(v) => put!(Int32Builder, Some(v)),
            Err(_) => false,
        },
        (DataType::Int32, _) if null => put!(Int32Builder, None::<i32>),
        (DataType::Int16, Cell::Int(v)) => match i16::try_from(v) {
            Ok(v) => put!(Int16Builder, Some(v)),
            Err(_) => false,
        },
        (DataType::Int16, _) if null => put!(Int16Builder, None::<i16>),
        (DataType::Utf8, Cell::Text(v)) => put!(StringBuilder, Some(v)),
        (DataType::Utf8, _) if null => put!(StringBuilder, None::<&str>),
        (DataType::Boolean, Cell::Bool(v)) => put!(BooleanBuilder, Some(v)),
        (DataType::Boolean, _) if null => put!(BooleanBuilder, None::<bool>),
        (DataType::Date32, Cell::Date(v)) => put!(Date32Builder, Some(days(v))),
        (DataType::Date32, _) if null => put!(Date32Builder, None::<i32>),
        (DataType::Float64, Cell::Real(v)) => put!(Float64Builder, Some(v)),
        (DataType::Float64, _) if null => put!(Float64Builder, None::<f64>),
        (DataType::Decimal128(_, 2), Cell::Cents(v)) => put!(Decimal128Builder, Some(v)),
        (DataType::Decimal128(_, _), _) if null => put!(Decimal128Builder, None::<i128>),
        (DataType::Timestamp(_, _), Cell::Timestamp(v)) => {
            put!(TimestampMicrosecondBuilder, Some(v))
        }
        (DataType::Timestamp(_, _), _) if null => put!(TimestampMicrosecondBuilder, None::<i64>),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::calendar::ymd;
    use crate::schema::Catalog;

    #[test]
    fn rows_become_batches_with_the_table_schema() {
        let catalog = Catalog::builtin().unwrap();
        let def = catalog.table("quota_ledger").unwrap();
        let mut builder = TableBuilder::new(def).unwrap();
        builder
            .push(&[
                Cell::Int(1),
                Cell::Int(7),
                Cell::Text("行政"),
                Cell::Text("核增"),
                Cell::Int(-3),
                Cell::Date(ymd(2021, 3, 1)),
                Cell::Null,
                Cell::Int(9),
                Cell::Text("深编〔2021〕3号"),
                Cell::Timestamp(1_600_000_000_000_000),
            ])
            .unwrap();
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), def.arrow_schema());
        // Wrong arity, wrong type and NULL in a NOT NULL column are refused.
        assert!(builder.push(&[Cell::Int(1)]).is_err());
        let mut bad = vec![Cell::Null; 10];
        bad[0] = Cell::Int(1);
        assert!(builder
            .push(&bad)
            .unwrap_err()
            .to_string()
            .contains("NOT NULL"));
        let mut wrong = vec![Cell::Int(1); 10];
        wrong[2] = Cell::Int(5);
        assert!(builder
            .push(&wrong)
            .unwrap_err()
            .to_string()
            .contains("does not fit"));
    }
}
