//! `gini(x [, weight])`: Gini coefficient of values, optionally population-weighted.

use std::mem::size_of_val;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{internal_err, not_impl_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, TypeSignature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{
    check_non_negative, check_weight, extend_from_float64_lists, float64_argument,
    float64_list_scalar, float64_list_state_fields, for_each_complete_row, numeric_as_float64,
    sort_pairs, zip_pairs, CompensatedSum,
};

const NAME: &str = "gini";

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns the Gini coefficient of `x`, as Float64: 0 when every unit has the same \
value, approaching 1 when one unit has everything.

Unweighted, each row is one unit: `G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n² μ)` with `μ = Σ x / n`. This is the \
population form, without the small-sample factor `n / (n − 1)`, so one unit holding everything \
among `n` gives `(n − 1) / n`, not 1; it matches the area form `1 − 2 × (area under the Lorenz \
curve)`.

Weighted, `x` is a per-capita **rate** (not an amount) and `weight` the population it applies \
to: `G = Σᵢ Σⱼ wᵢ wⱼ |xᵢ − xⱼ| / (2 W² μ_w)` with `W = Σ w` and `μ_w = Σ w x / W`. This is the \
Gini of the population-weighted Lorenz curve that `lorenz(amount, population)` draws; for an \
amount per unit pass the rate, e.g. `gini(per_10k(quota, population), population)`. \
With all weights 1 it equals the unweighted form.

Rows where any argument is NULL are skipped. The result is NULL with fewer than 2 such rows, \
when the total weight is 0, or when the (weighted) mean is 0. Rows of weight 0 count as rows \
but change nothing. A negative or non-finite `x` or `weight` is an execution error: the Gini \
coefficient is defined for values ≥ 0. The result does not depend on row order or partitioning \
(values are sorted before summing; O(n log n)); the partial state keeps every value.",
    syntax_example = "gini(x [, weight])",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT gini(quota) AS unweighted,
         gini(per_10k(quota, population), population) AS per_capita
  FROM district_quota;
+--------------------+---------------------+
| unweighted         | per_capita          |
+--------------------+---------------------+
| 0.4172043010752688 | 0.09187574671445639 |
+--------------------+---------------------+
```"#,
    argument(
        name = "x",
        description = "Value of each unit, ≥ 0. With `weight`, a per-capita rate such as `per_10k(quota, population)`."
    ),
    argument(
        name = "weight",
        description = "Optional population (≥ 0) that the rate `x` applies to. Without it every row weighs 1."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GiniFunc {
    signature: Signature,
}

impl Default for GiniFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl GiniFunc {
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

impl AggregateUDFImpl for GiniFunc {
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
        Ok(float64_list_state_fields(args.name, &["values", "weights"]))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{NAME}(DISTINCT ...) is not supported");
        }
        Ok(Box::<GiniAccumulator>::default())
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Keeps every (value, weight) pair: the Gini needs them all, sorted.
#[derive(Debug, Default)]
pub(crate) struct GiniAccumulator {
    values: Vec<f64>,
    weights: Vec<f64>,
}

impl Accumulator for GiniAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let columns = values
            .iter()
            .map(float64_argument)
            .collect::<Result<Vec<_>>>()?;
        for_each_complete_row(&columns, |row| {
            let (value, weight) = match row {
                [value] => (*value, 1.0),
                [value, weight] => (*value, check_weight(NAME, *weight)?),
                _ => return internal_err!("{NAME}: expected 1 or 2 arguments, got {}", row.len()),
            };
            let value = check_non_negative(NAME, "value", value)?;
            self.values.push(value);
            self.weights.push(weight);
            Ok(())
        })
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut pairs = zip_pairs(NAME, &self.values, &self.weights)?;
        Ok(ScalarValue::Float64(gini_of_pairs(&mut pairs)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + (self.values.capacity() + self.weights.capacity()) * size_of::<f64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            float64_list_scalar(&self.values),
            float64_list_scalar(&self.weights),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, weights] = states else {
            return internal_err!("{NAME}: expected 2 state columns, got {}", states.len());
        };
        extend_from_float64_lists(NAME, values, &mut self.values)?;
        extend_from_float64_lists(NAME, weights, &mut self.weights)
    }
}

/// Weighted Gini of (value, weight) pairs with values ≥ 0 and weights ≥ 0.
///
/// After sorting by value, `Σᵢ Σⱼ wᵢ wⱼ |xᵢ − xⱼ| = 2 Σᵢ wᵢ Dᵢ` with
/// `Dᵢ = Σ_{j<i} wⱼ (xᵢ − xⱼ)`, and `Dᵢ = D_{i−1} + (Σ_{j<i} wⱼ)(xᵢ − x_{i−1})`.
/// Every term is ≥ 0, so there is no cancellation and equal values give
/// exactly 0. Then `G = Σᵢ wᵢ Dᵢ / (W · Σ w x)`.
pub(crate) fn gini_of_pairs(pairs: &mut [(f64, f64)]) -> Option<f64> {
    if pairs.len() < 2 {
        return None;
    }
    sort_pairs(pairs);
    let mut weight_below = CompensatedSum::default();
    let mut distance_below = CompensatedSum::default();
    let mut pair_sum = CompensatedSum::default();
    let mut weighted_total = CompensatedSum::default();
    let mut previous_value: Option<f64> = None;
    for &(value, weight) in pairs.iter() {
        if let Some(previous_value) = previous_value {
            distance_below.add(weight_below.value() * (value - previous_value));
        }
        pair_sum.add(weight * distance_below.value());
        weight_below.add(weight);
        weighted_total.add(weight * value);
        previous_value = Some(value);
    }
    let total_weight = weight_below.value();
    let weighted_total = weighted_total.value();
    if total_weight <= 0.0 || weighted_total <= 0.0 {
        return None;
    }
    Some(pair_sum.value() / total_weight / weighted_total)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Float64Array;

    use super::*;

    fn unweighted(values: &[f64]) -> Option<f64> {
        let mut pairs: Vec<(f64, f64)> = values.iter().map(|value| (*value, 1.0)).collect();
        gini_of_pairs(&mut pairs)
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

    fn column(values: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    #[test]
    fn equal_values_give_zero() {
        assert_eq!(unweighted(&[7.0, 7.0, 7.0, 7.0]), Some(0.0));
        let mut pairs = vec![(3.5, 10.0), (3.5, 2.0), (3.5, 0.5)];
        assert_eq!(gini_of_pairs(&mut pairs), Some(0.0));
    }

    #[test]
    fn one_unit_holding_everything() {
        for units in 2..=10_usize {
            let mut values = vec![0.0; units];
            values[units / 2] = 42.0;
            assert_close(unweighted(&values), (units as f64 - 1.0) / units as f64);
        }
    }

    #[test]
    fn known_answers() {
        // Reference: exact brute-force double sum in Python fractions:
        //   x = [Fraction(v) for v in (3, 1, 4, 1, 5, 9, 2, 6)]; n = len(x)
        //   sum(abs(a - b) for a in x for b in x) / (2 * n * n * (sum(x) / n))
        assert_close(
            unweighted(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]),
            0.36693548387096775,
        );
        // Reference: the same with weights, in Python fractions:
        //   x = (12.5, 8, 20, 15, 3); w = (120000, 80000, 45000, 200000, 5000)
        //   sum(wi*wj*abs(xi-xj)) / (2 * W**2 * (sum(w*x) / W))
        let mut pairs = vec![
            (12.5, 120_000.0),
            (8.0, 80_000.0),
            (20.0, 45_000.0),
            (15.0, 200_000.0),
            (3.0, 5_000.0),
        ];
        assert_close(gini_of_pairs(&mut pairs), 0.13484723369116433);
    }

    #[test]
    fn too_few_rows_or_zero_mean_is_null() {
        assert_eq!(unweighted(&[5.0]), None);
        assert_eq!(unweighted(&[]), None);
        assert_eq!(unweighted(&[0.0, 0.0, 0.0]), None);
        let mut zero_weights = vec![(1.0, 0.0), (2.0, 0.0)];
        assert_eq!(gini_of_pairs(&mut zero_weights), None);
    }

    #[test]
    fn negative_inputs_are_errors() {
        let mut accumulator = GiniAccumulator::default();
        let error = accumulator.update_batch(&[column(&[1.0, -2.0])]);
        assert!(error.is_err_and(|error| error.to_string().contains("gini")));
        let mut accumulator = GiniAccumulator::default();
        let error = accumulator.update_batch(&[column(&[1.0, 2.0]), column(&[1.0, -1.0])]);
        assert!(error.is_err_and(|error| error.to_string().contains("weight")));
    }

    #[test]
    fn nulls_are_skipped() -> Result<()> {
        let mut accumulator = GiniAccumulator::default();
        let values: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)]));
        let weights: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), Some(1.0), None]));
        accumulator.update_batch(&[values, weights])?;
        assert_eq!(accumulator.evaluate()?, ScalarValue::Float64(None));
        Ok(())
    }

    #[test]
    fn merged_partial_states_match_one_pass() -> Result<()> {
        let values = [12.5, 8.0, 20.0, 15.0, 3.0, 0.0, 7.25];
        let weights = [
            120_000.0, 80_000.0, 45_000.0, 200_000.0, 5_000.0, 1_000.0, 0.0,
        ];
        let mut whole = GiniAccumulator::default();
        whole.update_batch(&[column(&values), column(&weights)])?;

        let mut first = GiniAccumulator::default();
        first.update_batch(&[column(&values[4..]), column(&weights[4..])])?;
        let mut second = GiniAccumulator::default();
        let reversed_values: Vec<f64> = values[..4].iter().rev().copied().collect();
        let reversed_weights: Vec<f64> = weights[..4].iter().rev().copied().collect();
        second.update_batch(&[column(&reversed_values), column(&reversed_weights)])?;
        let mut merged = GiniAccumulator::default();
        for partial in [&mut second, &mut first] {
            let state = partial
                .state()?
                .iter()
                .map(|scalar| scalar.to_array())
                .collect::<Result<Vec<_>>>()?;
            merged.merge_batch(&state)?;
        }
        assert_eq!(merged.evaluate()?, whole.evaluate()?);
        Ok(())
    }
}
