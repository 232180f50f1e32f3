//! Pieces shared by the allocation functions: argument coercion, input checks,
//! compensated sums and the list-shaped partial states of the aggregates that
//! need every row (Gini, Lorenz, Hoover). The anomaly family reuses the
//! coercion, operand and list-state helpers.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::types::{logical_float64, NativeType};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{exec_err, internal_err, Result, ScalarValue};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Coercion, ColumnarValue, TypeSignatureClass};

/// Any numeric argument (integers, decimals, floats, NULL) is cast to Float64
/// before the function sees it, so `per_10k(3, 1.5)` and integer columns work.
pub(crate) fn numeric_as_float64() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_float64()),
        vec![TypeSignatureClass::Numeric],
        NativeType::Float64,
    )
}

/// The argument as a Float64 array; the signature already coerced it, the
/// cast only covers callers that bypass planning (tests, dictionary columns).
pub(crate) fn float64_argument(array: &ArrayRef) -> Result<Float64Array> {
    if array.data_type() == &DataType::Float64 {
        return Ok(array.as_primitive::<Float64Type>().clone());
    }
    let casted = cast(array, &DataType::Float64)?;
    Ok(casted.as_primitive::<Float64Type>().clone())
}

/// Rows of the given Float64 columns where no argument is NULL; each row is
/// handed to `visit` as a slice in argument order.
pub(crate) fn for_each_complete_row(
    columns: &[Float64Array],
    mut visit: impl FnMut(&[f64]) -> Result<()>,
) -> Result<()> {
    let Some(first) = columns.first() else {
        return Ok(());
    };
    let mut row = vec![0.0; columns.len()];
    'rows: for index in 0..first.len() {
        for (slot, column) in row.iter_mut().zip(columns) {
            if column.is_null(index) {
                continue 'rows;
            }
            *slot = column.value(index);
        }
        visit(&row)?;
    }
    Ok(())
}

/// A weight must be a finite number ≥ 0; anything else is a caller error.
pub(crate) fn check_weight(function: &str, weight: f64) -> Result<f64> {
    if !weight.is_finite() {
        return exec_err!("{function}: weight must be a finite number, got {weight}");
    }
    if weight < 0.0 {
        return exec_err!("{function}: weight must not be negative, got {weight}");
    }
    Ok(weight)
}

/// An allocated amount (or a rate for `gini`) must be a finite number ≥ 0.
pub(crate) fn check_non_negative(function: &str, what: &str, value: f64) -> Result<f64> {
    if !value.is_finite() {
        return exec_err!("{function}: {what} must be a finite number, got {value}");
    }
    if value < 0.0 {
        return exec_err!("{function}: {what} must not be negative, got {value}");
    }
    Ok(value)
}

/// Any finite number (for `cv`, where negative values are meaningful).
pub(crate) fn check_finite(function: &str, what: &str, value: f64) -> Result<f64> {
    if !value.is_finite() {
        return exec_err!("{function}: {what} must be a finite number, got {value}");
    }
    Ok(value)
}

/// Neumaier's compensated sum: partial results from different partitions
/// then agree with a single-pass sum far below the 1e-12 we promise.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    pub(crate) fn add(&mut self, value: f64) {
        let total = self.sum + value;
        if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - total) + value;
        } else {
            self.compensation += (value - total) + self.sum;
        }
        self.sum = total;
    }

    pub(crate) fn value(&self) -> f64 {
        self.sum + self.compensation
    }

    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> f64 {
        let mut sum = Self::default();
        for value in values {
            sum.add(value);
        }
        sum.value()
    }
}

/// Data type of a `List<Float64>` state column.
pub(crate) fn float64_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

/// One `List<Float64>` state field per name, named after the aggregate.
pub(crate) fn float64_list_state_fields(aggregate: &str, names: &[&str]) -> Vec<FieldRef> {
    names
        .iter()
        .map(|name| {
            Arc::new(Field::new(
                format_state_name(aggregate, name),
                float64_list_type(),
                true,
            ))
        })
        .collect()
}

/// One row of a `List<Float64>` state column.
pub(crate) fn float64_list_scalar(values: &[f64]) -> ScalarValue {
    let array: ArrayRef = Arc::new(Float64Array::from(values.to_vec()));
    SingleRowListArrayBuilder::new(array).build_list_scalar()
}

/// Appends every value of every row of a `List<Float64>` state column.
pub(crate) fn extend_from_float64_lists(
    function: &str,
    state: &ArrayRef,
    target: &mut Vec<f64>,
) -> Result<()> {
    let Some(lists) = state.as_list_opt::<i32>() else {
        return internal_err!(
            "{function}: partial state should be List<Float64>, got {}",
            state.data_type()
        );
    };
    append_list_values(function, lists, target)
}

fn append_list_values(function: &str, lists: &ListArray, target: &mut Vec<f64>) -> Result<()> {
    for row in 0..lists.len() {
        if lists.is_null(row) {
            continue;
        }
        let values = lists.value(row);
        let Some(values) = values.as_primitive_opt::<Float64Type>() else {
            return internal_err!(
                "{function}: partial state items should be Float64, got {}",
                values.data_type()
            );
        };
        if values.null_count() > 0 {
            return internal_err!("{function}: partial state holds NULL items");
        }
        target.extend_from_slice(values.values());
    }
    Ok(())
}

/// Sorts (value, weight) pairs so that evaluation sums in one fixed order,
/// whatever the row order and partitioning were.
pub(crate) fn sort_pairs(pairs: &mut [(f64, f64)]) {
    pairs.sort_unstable_by(|left, right| {
        left.0
            .total_cmp(&right.0)
            .then_with(|| left.1.total_cmp(&right.1))
    });
}

/// Pairs from two parallel state vectors; they always have equal length.
pub(crate) fn zip_pairs(function: &str, first: &[f64], second: &[f64]) -> Result<Vec<(f64, f64)>> {
    if first.len() != second.len() {
        return internal_err!(
            "{function}: partial state lists differ in length ({} vs {})",
            first.len(),
            second.len()
        );
    }
    Ok(first.iter().copied().zip(second.iter().copied()).collect())
}

/// Reads one f64 scalar state column row; NULL means "nothing yet".
pub(crate) fn float64_state_values(function: &str, state: &ArrayRef) -> Result<Float64Array> {
    match state.as_primitive_opt::<Float64Type>() {
        Some(values) => Ok(values.clone()),
        None => internal_err!(
            "{function}: partial state should be Float64, got {}",
            state.data_type()
        ),
    }
}

/// Reads one u64 scalar state column.
pub(crate) fn uint64_state_values(
    function: &str,
    state: &ArrayRef,
) -> Result<arrow::array::UInt64Array> {
    match state.as_primitive_opt::<arrow::datatypes::UInt64Type>() {
        Some(values) => Ok(values.clone()),
        None => internal_err!(
            "{function}: partial state should be UInt64, got {}",
            state.data_type()
        ),
    }
}

/// One argument of a scalar call: a literal broadcast to every row, or a
/// column. Keeps literal-vs-column calls from materialising the literal.
pub(crate) enum Float64Operand {
    Literal(Option<f64>),
    Column(Float64Array),
}

impl Float64Operand {
    pub(crate) fn from_columnar(value: &ColumnarValue) -> Result<Self> {
        match value {
            ColumnarValue::Array(array) => Ok(Self::Column(float64_argument(array)?)),
            ColumnarValue::Scalar(scalar) => match scalar.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(value) => Ok(Self::Literal(value)),
                other => internal_err!("cast to Float64 gave {}", other.data_type()),
            },
        }
    }

    pub(crate) fn get(&self, row: usize) -> Option<f64> {
        match self {
            Self::Literal(value) => *value,
            Self::Column(column) => column.is_valid(row).then(|| column.value(row)),
        }
    }
}

/// Applies a row function to Float64 operands; any NULL argument gives NULL.
/// All-literal calls stay a literal (the planner folds them this way too).
pub(crate) fn map_float64_rows<const N: usize>(
    arguments: &[ColumnarValue],
    number_rows: usize,
    row_function: impl Fn([f64; N]) -> Option<f64>,
) -> Result<ColumnarValue> {
    if arguments.len() != N {
        return internal_err!("expected {N} arguments, got {}", arguments.len());
    }
    let operands = arguments
        .iter()
        .map(Float64Operand::from_columnar)
        .collect::<Result<Vec<_>>>()?;
    let evaluate_row = |row: usize| {
        let mut values = [0.0; N];
        for (slot, operand) in values.iter_mut().zip(&operands) {
            *slot = operand.get(row)?;
        }
        row_function(values)
    };
    if operands
        .iter()
        .all(|operand| matches!(operand, Float64Operand::Literal(_)))
    {
        return Ok(ColumnarValue::Scalar(ScalarValue::Float64(evaluate_row(0))));
    }
    let result: Float64Array = (0..number_rows).map(evaluate_row).collect();
    Ok(ColumnarValue::Array(Arc::new(result)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_keeps_small_terms() {
        let mut sum = CompensatedSum::default();
        sum.add(1e16);
        sum.add(1.0);
        sum.add(-1e16);
        assert_eq!(sum.value(), 1.0);
    }

    #[test]
    fn complete_rows_skip_nulls() -> Result<()> {
        let first = Float64Array::from(vec![Some(1.0), None, Some(3.0)]);
        let second = Float64Array::from(vec![Some(10.0), Some(20.0), None]);
        let mut seen = Vec::new();
        for_each_complete_row(&[first, second], |row| {
            seen.push(row.to_vec());
            Ok(())
        })?;
        assert_eq!(seen, vec![vec![1.0, 10.0]]);
        Ok(())
    }

    #[test]
    fn list_state_round_trip() -> Result<()> {
        let ScalarValue::List(list) = float64_list_scalar(&[1.0, 2.5]) else {
            unreachable!("float64_list_scalar builds a List scalar");
        };
        let state: ArrayRef = list;
        let mut values = Vec::new();
        extend_from_float64_lists("test", &state, &mut values)?;
        assert_eq!(values, vec![1.0, 2.5]);
        Ok(())
    }
}
