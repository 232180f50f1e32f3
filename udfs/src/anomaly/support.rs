//! Pieces shared by the anomaly functions: order statistics (median, MAD,
//! linearly interpolated quantiles), signatures with optional trailing
//! arguments, constant arguments read once per call, and the list state of
//! the aggregates that need every value.

use std::mem::size_of_val;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::types::{logical_boolean, logical_int64, NativeType};
use datafusion::common::{internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{ExpressionArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Signature, TypeSignature, TypeSignatureClass, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;

use crate::allocation::support::{
    extend_from_float64_lists, float64_argument, float64_list_scalar, float64_list_state_fields,
};

/// Scale of the modified z-score (Iglewicz and Hoaglin): 0.6745 ≈ Φ⁻¹(0.75),
/// so `MAD / 0.6745` estimates σ for normal data.
pub(crate) const MODIFIED_Z_SCALE: f64 = 0.6745;

/// An integer argument (lookback, minimum count), kept an integer so that
/// `robust_z(x, 12.5)` is a type error at planning.
pub(crate) fn integer_as_int64() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_int64()),
        vec![TypeSignatureClass::Integer],
        NativeType::Int64,
    )
}

pub(crate) fn boolean_argument() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_boolean()))
}

/// `name(required…[, optional…])`: one variant per number of optional
/// arguments given, each optional argument only after the ones before it.
pub(crate) fn signature_with_optional(
    required: Vec<Coercion>,
    optional: Vec<Coercion>,
) -> Signature {
    let variants = (0..=optional.len())
        .map(|given| {
            let mut arguments = required.clone();
            arguments.extend(optional.iter().take(given).cloned());
            TypeSignature::Coercible(arguments)
        })
        .collect();
    Signature::one_of(variants, Volatility::Immutable)
}

/// NaN and ±∞ count as missing, like NULL: a score against them means nothing.
pub(crate) fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// A numeric column as optional finite values.
pub(crate) fn observations(array: &ArrayRef) -> Result<Vec<Option<f64>>> {
    let column = float64_argument(array)?;
    Ok(column.iter().map(|value| value.and_then(finite)).collect())
}

pub(crate) fn sort_values(values: &mut [f64]) {
    values.sort_unstable_by(f64::total_cmp);
}

/// Quantile of sorted values by linear interpolation between closest ranks
/// (PostgreSQL `percentile_cont`, numpy's default): position `h = (n − 1) p`,
/// `Q = s[⌊h⌋] + (h − ⌊h⌋)(s[⌊h⌋ + 1] − s[⌊h⌋])`. `None` when empty.
pub(crate) fn quantile_of_sorted(sorted: &[f64], probability: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = last as f64 * probability;
    let below = (position.floor() as usize).min(last);
    let fraction = position - below as f64;
    let low = *sorted.get(below)?;
    match sorted.get(below + 1) {
        Some(high) if fraction > 0.0 => Some(low + fraction * (high - low)),
        _ => Some(low),
    }
}

/// Middle value, or the mean of the two middle values.
pub(crate) fn median_of_sorted(sorted: &[f64]) -> Option<f64> {
    quantile_of_sorted(sorted, 0.5)
}

/// Median and unscaled median absolute deviation `median(|x − median|)` of
/// sorted values; `deviations` is scratch space. `None` when empty.
pub(crate) fn median_and_mad_of_sorted(
    sorted: &[f64],
    deviations: &mut Vec<f64>,
) -> Option<(f64, f64)> {
    let median = median_of_sorted(sorted)?;
    deviations.clear();
    deviations.extend(sorted.iter().map(|value| (value - median).abs()));
    sort_values(deviations);
    Some((median, median_of_sorted(deviations)?))
}

/// `0.6745 (x − median) / MAD`; `None` when MAD is 0 (no spread, no scale).
pub(crate) fn modified_z(value: f64, median: f64, mad: f64) -> Option<f64> {
    if mad > 0.0 {
        finite(MODIFIED_Z_SCALE * (value - median) / mad)
    } else {
        None
    }
}

/// Value of the constant argument `index` (from 0) of a window or aggregate
/// call; `None` when the call leaves it out. A column, an expression of
/// columns or NULL is a planning error naming the function.
pub(crate) fn constant_argument(
    function: &str,
    name: &str,
    arguments: &[Arc<dyn PhysicalExpr>],
    index: usize,
) -> Result<Option<ScalarValue>> {
    let Some(argument) = arguments.get(index) else {
        return Ok(None);
    };
    // A constant (a literal, or a cast of one) evaluates without any column.
    let no_columns = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let value = match argument.evaluate(&no_columns) {
        Ok(ColumnarValue::Scalar(value)) => value,
        _ => return plan_err!("{function}: {name} must be a constant literal, got {argument}"),
    };
    if value.is_null() {
        return plan_err!("{function}: {name} must not be NULL");
    }
    Ok(Some(value))
}

/// A constant number argument, or `default` when left out.
pub(crate) fn constant_float(
    function: &str,
    name: &str,
    arguments: &[Arc<dyn PhysicalExpr>],
    index: usize,
    default: f64,
) -> Result<f64> {
    let Some(value) = constant_argument(function, name, arguments, index)? else {
        return Ok(default);
    };
    match value.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(value)) if value.is_finite() => Ok(value),
        other => plan_err!("{function}: {name} must be a finite number, got {other}"),
    }
}

/// A constant count argument (≥ 1), or `default` when left out.
pub(crate) fn constant_count(
    function: &str,
    name: &str,
    arguments: &[Arc<dyn PhysicalExpr>],
    index: usize,
    default: usize,
) -> Result<usize> {
    let Some(value) = constant_argument(function, name, arguments, index)? else {
        return Ok(default);
    };
    let ScalarValue::Int64(Some(count)) = value.cast_to(&DataType::Int64)? else {
        return plan_err!("{function}: {name} must be an integer, got {value}");
    };
    match usize::try_from(count) {
        Ok(count) if count >= 1 => Ok(count),
        _ => plan_err!("{function}: {name} must be at least 1, got {count}"),
    }
}

/// A constant boolean argument, or `default` when left out.
pub(crate) fn constant_flag(
    function: &str,
    name: &str,
    arguments: &[Arc<dyn PhysicalExpr>],
    index: usize,
    default: bool,
) -> Result<bool> {
    match constant_argument(function, name, arguments, index)? {
        None => Ok(default),
        Some(ScalarValue::Boolean(Some(flag))) => Ok(flag),
        Some(other) => plan_err!("{function}: {name} must be true or false, got {other}"),
    }
}

/// Window functions evaluate only the series per batch; their other
/// arguments are constants read once in `partition_evaluator`.
pub(crate) fn series_expression(expr_args: ExpressionArgs) -> Vec<Arc<dyn PhysicalExpr>> {
    expr_args.input_exprs().iter().take(1).cloned().collect()
}

/// The result column of a window function: nullable, of `data_type`.
pub(crate) fn nullable_field(field_args: &WindowUDFFieldArgs, data_type: DataType) -> FieldRef {
    Arc::new(Field::new(field_args.name(), data_type, true))
}

/// The series handed to `PartitionEvaluator::evaluate_all`, in partition order.
pub(crate) fn series_of(function: &str, values: &[ArrayRef]) -> Result<Vec<Option<f64>>> {
    let Some(series) = values.first() else {
        return internal_err!("{function}: the series argument was not evaluated");
    };
    observations(series)
}

/// Every finite value an aggregate has seen, for medians and quartiles;
/// NULL, NaN and ±∞ are skipped. The partial state is one `List<Float64>`.
#[derive(Debug, Default)]
pub(crate) struct FiniteSample {
    values: Vec<f64>,
}

impl FiniteSample {
    pub(crate) fn state_fields(aggregate: &str) -> Vec<FieldRef> {
        float64_list_state_fields(aggregate, &["values"])
    }

    /// Adds the first column (the sample); later columns are constants.
    pub(crate) fn update(&mut self, function: &str, columns: &[ArrayRef]) -> Result<()> {
        let Some(sample) = columns.first() else {
            return internal_err!("{function}: no argument column");
        };
        self.values
            .extend(observations(sample)?.into_iter().flatten());
        Ok(())
    }

    pub(crate) fn merge(&mut self, function: &str, states: &[ArrayRef]) -> Result<()> {
        let [values] = states else {
            return internal_err!("{function}: expected 1 state column, got {}", states.len());
        };
        extend_from_float64_lists(function, values, &mut self.values)
    }

    pub(crate) fn state(&self) -> Vec<ScalarValue> {
        vec![float64_list_scalar(&self.values)]
    }

    /// The values in ascending order, so that results do not depend on row
    /// order or partitioning.
    pub(crate) fn sorted(&mut self) -> &[f64] {
        sort_values(&mut self.values);
        &self.values
    }

    pub(crate) fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::physical_expr::expressions::{col, lit, CastExpr};

    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        // numpy.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75]) = [1.75, 2.5, 3.25]:
        // h = 3p = 0.75, 1.5, 2.25.
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_of_sorted(&sorted, 0.25), Some(1.75));
        assert_eq!(quantile_of_sorted(&sorted, 0.5), Some(2.5));
        assert_eq!(quantile_of_sorted(&sorted, 0.75), Some(3.25));
        assert_eq!(quantile_of_sorted(&sorted, 0.0), Some(1.0));
        assert_eq!(quantile_of_sorted(&sorted, 1.0), Some(4.0));
        assert_eq!(quantile_of_sorted(&[7.0], 0.25), Some(7.0));
        assert_eq!(quantile_of_sorted(&[], 0.5), None);
    }

    #[test]
    fn median_and_mad_known_answer() {
        // 1 2 3 4 100: median 3; |x − 3| = 2 1 0 1 97, sorted 0 1 1 2 97: MAD 1.
        let mut deviations = Vec::new();
        let sorted = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(
            median_and_mad_of_sorted(&sorted, &mut deviations),
            Some((3.0, 1.0))
        );
        assert_eq!(median_and_mad_of_sorted(&[], &mut deviations), None);
    }

    #[test]
    fn modified_z_needs_spread() {
        assert_eq!(modified_z(5.0, 3.0, 1.0), Some(2.0 * MODIFIED_Z_SCALE));
        assert_eq!(modified_z(5.0, 3.0, 0.0), None);
    }

    #[test]
    fn constants_are_read_and_columns_rejected() -> Result<()> {
        let schema = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
        let literal: Arc<dyn PhysicalExpr> = lit(ScalarValue::Int64(Some(12)));
        let casted: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(
            lit(ScalarValue::Int32(Some(3))),
            DataType::Float64,
            None,
        ));
        let column = col("x", &schema)?;
        let null: Arc<dyn PhysicalExpr> = lit(ScalarValue::Float64(None));
        let arguments = [column, literal, casted, null];
        assert_eq!(constant_count("f", "lookback", &arguments, 1, 6)?, 12);
        assert_eq!(constant_float("f", "k", &arguments, 2, 1.5)?, 3.0);
        assert_eq!(constant_float("f", "k", &arguments, 9, 1.5)?, 1.5);
        let error = constant_float("f", "k", &arguments, 0, 1.5);
        assert!(error.is_err_and(|error| error.to_string().contains("f: k must be a constant")));
        let error = constant_float("f", "k", &arguments, 3, 1.5);
        assert!(error.is_err_and(|error| error.to_string().contains("must not be NULL")));
        let zero = [lit(ScalarValue::Int64(Some(0)))];
        assert!(constant_count("f", "lookback", &zero, 0, 6).is_err());
        Ok(())
    }

    #[test]
    fn sample_skips_missing_values_and_round_trips() -> Result<()> {
        let column: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![
            Some(3.0),
            None,
            Some(f64::NAN),
            Some(1.0),
            Some(f64::INFINITY),
        ]));
        let mut sample = FiniteSample::default();
        sample.update("f", &[column])?;
        let state = sample
            .state()
            .iter()
            .map(ScalarValue::to_array)
            .collect::<Result<Vec<_>>>()?;
        let mut merged = FiniteSample::default();
        merged.merge("f", &state)?;
        assert_eq!(merged.sorted(), &[1.0, 3.0]);
        Ok(())
    }
}
