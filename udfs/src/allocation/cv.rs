//! `cv(x [, weight])`: coefficient of variation, optionally population-weighted.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{internal_err, not_impl_err, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature, TypeSignature,
    Volatility,
};
use datafusion_macros::user_doc;

use super::compact::{CompactAccumulator, CompactGroupsAccumulator, CompactState};
use super::support::{
    check_finite, check_weight, float64_state_values, numeric_as_float64, uint64_state_values,
};

const NAME: &str = "cv";

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns the coefficient of variation `σ / μ` of `x`, as Float64: 0 when every \
unit has the same value.

Unweighted, each row is one unit: `μ = Σ x / n`, `σ² = Σ (x − μ)² / n`. Weighted, `x` is a \
per-capita **rate** and `weight` the population it applies to: `μ = Σ w x / W`, \
`σ² = Σ w (x − μ)² / W` with `W = Σ w`. σ is the population standard deviation (divide by `n` \
or `W`, no `n − 1` correction), as usual for describing a complete set of units rather than \
estimating from a sample; for the sample form multiply by `√(n / (n − 1))`. One unit holding \
everything among `n` equal units gives `√(n − 1)`.

Rows where any argument is NULL are skipped. The result is NULL with fewer than 2 such rows, \
when the total weight is 0, or when the mean is exactly 0. Negative `x` is allowed; the sign of \
the result is the sign of the mean. A negative or non-finite `weight`, or a non-finite `x`, is \
an execution error. The partial state is compact (rows, Σ w, mean, Σ w (x − μ)², merged with \
Chan's formula), so results from any partitioning agree to about 1e-15.",
    syntax_example = "cv(x [, weight])",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT cv(quota) AS unweighted,
         cv(per_10k(quota, population), population) AS per_capita
  FROM district_quota;
+--------------------+--------------------+
| unweighted         | per_capita         |
+--------------------+--------------------+
| 0.7600256794439695 | 0.1880952224143645 |
+--------------------+--------------------+
```"#,
    argument(
        name = "x",
        description = "Value of each unit. With `weight`, a per-capita rate such as `per_10k(quota, population)`."
    ),
    argument(
        name = "weight",
        description = "Optional population (≥ 0) that the rate `x` applies to. Without it every row weighs 1."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CoefficientOfVariationFunc {
    signature: Signature,
}

impl Default for CoefficientOfVariationFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl CoefficientOfVariationFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![numeric_as_float64()]),
                    TypeSignature::Coercible(vec![numeric_as_float64(), numeric_as_float64()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for CoefficientOfVariationFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(WeightedMoments::state_fields(args.name))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{NAME}(DISTINCT ...) is not supported");
        }
        Ok(Box::new(CompactAccumulator::<WeightedMoments>::new(())))
    }

    fn groups_accumulator_supported(&self, acc_args: AccumulatorArgs) -> bool {
        !acc_args.is_distinct
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CompactGroupsAccumulator::<WeightedMoments>::new(
            (),
        )))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Weighted mean and sum of squared deviations (West's weighted Welford);
/// stable where Σ w x² − (Σ w x)² / W would cancel.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct WeightedMoments {
    rows: u64,
    weight_total: f64,
    mean: f64,
    squared_deviations: f64,
}

impl WeightedMoments {
    fn add(&mut self, value: f64, weight: f64) {
        self.rows += 1;
        if weight == 0.0 {
            return;
        }
        let weight_total = self.weight_total + weight;
        let deviation = value - self.mean;
        self.mean += deviation * weight / weight_total;
        self.squared_deviations += weight * deviation * (value - self.mean);
        self.weight_total = weight_total;
    }

    /// Chan et al.'s pairwise combination of two partial moments.
    fn combine(&mut self, other: &Self) {
        self.rows += other.rows;
        if other.weight_total == 0.0 {
            return;
        }
        if self.weight_total == 0.0 {
            self.weight_total = other.weight_total;
            self.mean = other.mean;
            self.squared_deviations = other.squared_deviations;
            return;
        }
        let weight_total = self.weight_total + other.weight_total;
        let deviation = other.mean - self.mean;
        self.mean += deviation * other.weight_total / weight_total;
        self.squared_deviations += other.squared_deviations
            + deviation * deviation * self.weight_total * other.weight_total / weight_total;
        self.weight_total = weight_total;
    }
}

const STATE_FIELDS: [(&str, DataType); 4] = [
    ("rows", DataType::UInt64),
    ("weight_total", DataType::Float64),
    ("mean", DataType::Float64),
    ("squared_deviations", DataType::Float64),
];

impl CompactState for WeightedMoments {
    type Settings = ();

    fn function_name(_settings: ()) -> &'static str {
        NAME
    }

    fn add_row(&mut self, _settings: (), row: &[f64]) -> Result<()> {
        let (value, weight) = match row {
            [value] => (*value, 1.0),
            [value, weight] => (*value, check_weight(NAME, *weight)?),
            _ => return internal_err!("{NAME}: expected 1 or 2 arguments, got {}", row.len()),
        };
        self.add(check_finite(NAME, "value", value)?, weight);
        Ok(())
    }

    fn merge(&mut self, other: &Self) {
        self.combine(other);
    }

    /// `σ / μ`, population σ; `None` when undefined.
    fn result(&self) -> Option<f64> {
        if self.rows < 2 || self.weight_total <= 0.0 || self.mean == 0.0 {
            return None;
        }
        let variance = (self.squared_deviations / self.weight_total).max(0.0);
        Some(variance.sqrt() / self.mean)
    }

    fn state_fields(aggregate: &str) -> Vec<FieldRef> {
        STATE_FIELDS
            .iter()
            .map(|(name, data_type)| {
                Arc::new(Field::new(
                    format_state_name(aggregate, name),
                    data_type.clone(),
                    true,
                ))
            })
            .collect()
    }

    fn to_state_arrays(states: &[Self]) -> Vec<ArrayRef> {
        let float_column = |read: fn(&Self) -> f64| -> ArrayRef {
            Arc::new(
                states
                    .iter()
                    .map(|state| Some(read(state)))
                    .collect::<Float64Array>(),
            )
        };
        vec![
            Arc::new(
                states
                    .iter()
                    .map(|state| Some(state.rows))
                    .collect::<UInt64Array>(),
            ),
            float_column(|state| state.weight_total),
            float_column(|state| state.mean),
            float_column(|state| state.squared_deviations),
        ]
    }

    fn from_state_arrays(function: &str, arrays: &[ArrayRef]) -> Result<Vec<Option<Self>>> {
        let [rows, weight_totals, means, squared_deviations] = arrays else {
            return internal_err!(
                "{function}: expected {} state columns, got {}",
                STATE_FIELDS.len(),
                arrays.len()
            );
        };
        let rows = uint64_state_values(function, rows)?;
        let weight_totals = float64_state_values(function, weight_totals)?;
        let means = float64_state_values(function, means)?;
        let squared_deviations = float64_state_values(function, squared_deviations)?;
        Ok((0..rows.len())
            .map(|index| {
                rows.is_valid(index).then(|| Self {
                    rows: rows.value(index),
                    weight_total: weight_totals.value(index),
                    mean: means.value(index),
                    squared_deviations: squared_deviations.value(index),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::ScalarValue;

    use super::*;

    fn column(values: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn cv(columns: &[&[f64]]) -> Result<Option<f64>> {
        let mut accumulator = CompactAccumulator::<WeightedMoments>::new(());
        let columns: Vec<ArrayRef> = columns.iter().map(|values| column(values)).collect();
        accumulator.update_batch(&columns)?;
        Ok(accumulator.result())
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let Some(actual) = actual else {
            panic!("expected {expected}, got NULL");
        };
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn equal_values_give_zero() -> Result<()> {
        assert_eq!(cv(&[&[4.2, 4.2, 4.2]])?, Some(0.0));
        assert_eq!(cv(&[&[4.2, 4.2, 4.2], &[1.0, 50.0, 3.0]])?, Some(0.0));
        Ok(())
    }

    #[test]
    fn one_unit_holding_everything() -> Result<()> {
        for units in 2..=10_usize {
            let mut values = vec![0.0; units];
            values[0] = 17.0;
            assert_close(cv(&[&values])?, (units as f64 - 1.0).sqrt());
        }
        Ok(())
    }

    #[test]
    fn known_answers() -> Result<()> {
        // Reference: exact in Python fractions: x = (3, 1, 4, 1, 5, 9, 2, 6) has
        // μ = 31/8 and σ² = 423/64, so σ/μ = √423 / 31.
        assert_close(
            cv(&[&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]])?,
            423f64.sqrt() / 31.0,
        );
        // Reference: exact in Python fractions: x = (12.5, 8, 20, 15, 3),
        // w = (120000, 80000, 45000, 200000, 5000) has μ = 1211/90 and
        // σ² = 97949/8100, so σ/μ = √97949 / 1211.
        assert_close(
            cv(&[
                &[12.5, 8.0, 20.0, 15.0, 3.0],
                &[120_000.0, 80_000.0, 45_000.0, 200_000.0, 5_000.0],
            ])?,
            97_949f64.sqrt() / 1211.0,
        );
        Ok(())
    }

    #[test]
    fn undefined_cases_are_null() -> Result<()> {
        assert_eq!(cv(&[&[3.0]])?, None);
        assert_eq!(cv(&[&[-1.0, 1.0]])?, None);
        assert_eq!(cv(&[&[1.0, 2.0], &[0.0, 0.0]])?, None);
        // A negative mean gives a negative coefficient.
        assert_close(cv(&[&[-1.0, -3.0]])?, -0.5);
        Ok(())
    }

    #[test]
    fn bad_weights_are_errors() {
        let error = cv(&[&[1.0, 2.0], &[1.0, -2.0]]);
        assert!(error.is_err_and(|error| error.to_string().contains(NAME)));
        let error = cv(&[&[1.0, f64::INFINITY]]);
        assert!(error.is_err_and(|error| error.to_string().contains("finite")));
    }

    #[test]
    fn merged_partial_states_match_one_pass() -> Result<()> {
        let values = [12.5, 8.0, 20.0, 15.0, 3.0, 9.75];
        let weights = [120_000.0, 80_000.0, 45_000.0, 200_000.0, 5_000.0, 0.0];
        let whole = cv(&[&values, &weights])?;
        let mut merged = CompactAccumulator::<WeightedMoments>::new(());
        // An empty partition, then two halves in reverse order.
        for (part_values, part_weights) in [
            (vec![], vec![]),
            (vec![9.75, 3.0, 15.0], vec![0.0, 5_000.0, 200_000.0]),
            (vec![20.0, 8.0, 12.5], vec![45_000.0, 80_000.0, 120_000.0]),
        ] {
            let mut partial = CompactAccumulator::<WeightedMoments>::new(());
            partial.update_batch(&[column(&part_values), column(&part_weights)])?;
            let state = partial
                .state()?
                .iter()
                .map(ScalarValue::to_array)
                .collect::<Result<Vec<_>>>()?;
            merged.merge_batch(&state)?;
        }
        assert_close(merged.result(), whole.unwrap_or(f64::NAN));
        Ok(())
    }
}
