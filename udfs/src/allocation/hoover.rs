//! `hoover(value, weight)`: Hoover index, the share of an allocation that
//! would have to move for equal per-capita allocation.

use std::mem::size_of_val;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{internal_err, not_impl_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{
    check_non_negative, check_weight, extend_from_float64_lists, float64_argument,
    float64_list_scalar, float64_list_state_fields, for_each_complete_row, numeric_as_float64,
    sort_pairs, zip_pairs, CompensatedSum,
};

const NAME: &str = "hoover";

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns the Hoover index (Robin Hood index) of an allocation, as Float64: the \
share of the total that would have to move between units for every unit to get the same amount \
per head. 0 for equal per-capita allocation; one unit holding everything gives \
`1 − (its population share)`.

Each row is one unit with the `value` allocated to it (an amount, e.g. quota) and its `weight` \
(population). With `sᵢ = valueᵢ / Σ value` and `pᵢ = weightᵢ / Σ weight`: \
`H = ½ Σ |sᵢ − pᵢ|`. It is also the largest vertical gap between the Lorenz curve of \
`lorenz(value, weight)` and the diagonal.

Rows where any argument is NULL are skipped. The result is NULL with fewer than 2 such rows or \
when the total value or total weight is 0. A negative or non-finite `value` or `weight` is an \
execution error. The shares need the totals first, so the partial state keeps every row; the \
result does not depend on row order or partitioning.",
    syntax_example = "hoover(value, weight)",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT hoover(quota, population) FROM district_quota;
+--------------------------------------------------------+
| hoover(district_quota.quota,district_quota.population) |
+--------------------------------------------------------+
| 0.06630824372759855                                    |
+--------------------------------------------------------+
```"#,
    argument(
        name = "value",
        description = "Amount allocated to the unit, ≥ 0, e.g. staffing quota (not a rate)."
    ),
    argument(name = "weight", description = "Population of the unit, ≥ 0.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HooverFunc {
    signature: Signature,
}

impl Default for HooverFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl HooverFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![numeric_as_float64(), numeric_as_float64()],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for HooverFunc {
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
        Ok(Box::<HooverAccumulator>::default())
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Keeps every (value, weight) pair: shares need both totals first.
#[derive(Debug, Default)]
pub(crate) struct HooverAccumulator {
    values: Vec<f64>,
    weights: Vec<f64>,
}

impl Accumulator for HooverAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let columns = values
            .iter()
            .map(float64_argument)
            .collect::<Result<Vec<_>>>()?;
        for_each_complete_row(&columns, |row| {
            let [value, weight] = row else {
                return internal_err!("{NAME}: expected 2 arguments, got {}", row.len());
            };
            self.values.push(check_non_negative(NAME, "value", *value)?);
            self.weights.push(check_weight(NAME, *weight)?);
            Ok(())
        })
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut pairs = zip_pairs(NAME, &self.values, &self.weights)?;
        Ok(ScalarValue::Float64(hoover_of_pairs(&mut pairs)))
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

/// `½ Σ |sᵢ − pᵢ|`, summed in sorted order so any row order gives the same bits.
pub(crate) fn hoover_of_pairs(pairs: &mut [(f64, f64)]) -> Option<f64> {
    if pairs.len() < 2 {
        return None;
    }
    sort_pairs(pairs);
    let value_total = CompensatedSum::of(pairs.iter().map(|pair| pair.0));
    let weight_total = CompensatedSum::of(pairs.iter().map(|pair| pair.1));
    if value_total <= 0.0 || weight_total <= 0.0 {
        return None;
    }
    let gaps = CompensatedSum::of(
        pairs
            .iter()
            .map(|(value, weight)| (value / value_total - weight / weight_total).abs()),
    );
    Some((0.5 * gaps).min(1.0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Float64Array;

    use super::*;

    fn column(values: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn hoover(values: &[f64], weights: &[f64]) -> Option<f64> {
        let mut pairs: Vec<(f64, f64)> = values
            .iter()
            .copied()
            .zip(weights.iter().copied())
            .collect();
        hoover_of_pairs(&mut pairs)
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let Some(actual) = actual else {
            panic!("expected {expected}, got NULL");
        };
        assert!(
            (actual - expected).abs() <= 1e-12,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn equal_per_capita_gives_zero() {
        assert_close(hoover(&[10.0, 30.0, 5.0], &[100.0, 300.0, 50.0]), 0.0);
        assert_close(hoover(&[2.0, 2.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn one_unit_holding_everything() {
        assert_close(hoover(&[0.0, 0.0, 80.0], &[500.0, 300.0, 200.0]), 1.0 - 0.2);
        assert_close(hoover(&[0.0, 9.0, 0.0, 0.0], &[1.0, 1.0, 1.0, 1.0]), 0.75);
    }

    #[test]
    fn known_answer() {
        // Reference: exact in Python fractions:
        //   v = (30, 12, 9, 40, 2); w = (12, 8, 4.5, 20, 0.5)
        //   sum(abs(a/V - b/W)) / 2 = 37/558
        assert_close(
            hoover(&[30.0, 12.0, 9.0, 40.0, 2.0], &[12.0, 8.0, 4.5, 20.0, 0.5]),
            37.0 / 558.0,
        );
    }

    #[test]
    fn undefined_cases_are_null() {
        assert_eq!(hoover(&[1.0], &[1.0]), None);
        assert_eq!(hoover(&[0.0, 0.0], &[1.0, 1.0]), None);
        assert_eq!(hoover(&[1.0, 1.0], &[0.0, 0.0]), None);
    }

    #[test]
    fn negative_inputs_are_errors() {
        let mut accumulator = HooverAccumulator::default();
        let error = accumulator.update_batch(&[column(&[1.0, 2.0]), column(&[-1.0, 1.0])]);
        assert!(error.is_err_and(|error| error.to_string().contains(NAME)));
    }

    #[test]
    fn merged_partial_states_match_one_pass() -> Result<()> {
        let values = [30.0, 12.0, 9.0, 40.0, 2.0, 0.0];
        let weights = [12.0, 8.0, 4.5, 20.0, 0.5, 3.0];
        let mut whole = HooverAccumulator::default();
        whole.update_batch(&[column(&values), column(&weights)])?;
        let mut merged = HooverAccumulator::default();
        for (part_values, part_weights) in [
            (vec![0.0, 40.0], vec![3.0, 20.0]),
            (vec![2.0, 9.0, 12.0, 30.0], vec![0.5, 4.5, 8.0, 12.0]),
        ] {
            let mut partial = HooverAccumulator::default();
            partial.update_batch(&[column(&part_values), column(&part_weights)])?;
            let state = partial
                .state()?
                .iter()
                .map(ScalarValue::to_array)
                .collect::<Result<Vec<_>>>()?;
            merged.merge_batch(&state)?;
        }
        assert_eq!(merged.evaluate()?, whole.evaluate()?);
        Ok(())
    }
}
