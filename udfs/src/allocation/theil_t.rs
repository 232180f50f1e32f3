//! `theil_t(value, weight)`: Theil T index of an allocation over a population.

use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{not_impl_err, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::compact::{CompactAccumulator, CompactGroupsAccumulator, CompactState};
use super::support::numeric_as_float64;
use super::theil_sums::{TheilKind, TheilState};

const NAME: &str = "theil_t";

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns the Theil T index (GE(1)) of an allocation, as Float64: 0 when every \
unit gets the same amount per head, larger when the amount is concentrated.

Each row is one unit with the `value` allocated to it (an amount, e.g. quota) and its `weight` \
(population). With amount shares `sᵢ = valueᵢ / Σ value` and population shares \
`pᵢ = weightᵢ / Σ weight`: `T = Σ sᵢ ln(sᵢ / pᵢ)`. A unit with value 0 contributes 0 (the limit \
of `s ln s`). A unit with weight 0 and a positive value makes T infinite: the result is NULL. \
T is additively decomposable by groups, see `theil_decompose`.

Rows where any argument is NULL are skipped. The result is NULL with fewer than 2 such rows or \
when the total value or total weight is 0. A negative or non-finite `value` or `weight` is an \
execution error. The partial state is compact (Σ value, Σ weight, Σ value·ln(value/weight), \
with compensated sums), so results from any partitioning agree to about 1e-15.",
    syntax_example = "theil_t(value, weight)",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT theil_t(quota, population) FROM district_quota;
+---------------------------------------------------------+
| theil_t(district_quota.quota,district_quota.population) |
+---------------------------------------------------------+
| 0.016978091490178926                                    |
+---------------------------------------------------------+
```"#,
    argument(
        name = "value",
        description = "Amount allocated to the unit, ≥ 0, e.g. staffing quota (not a rate)."
    ),
    argument(name = "weight", description = "Population of the unit, ≥ 0.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TheilTFunc {
    signature: Signature,
}

impl Default for TheilTFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl TheilTFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![numeric_as_float64(), numeric_as_float64()],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for TheilTFunc {
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
        Ok(TheilState::state_fields(args.name))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{NAME}(DISTINCT ...) is not supported");
        }
        Ok(Box::new(CompactAccumulator::<TheilState>::new(
            TheilKind::T,
        )))
    }

    fn groups_accumulator_supported(&self, acc_args: AccumulatorArgs) -> bool {
        !acc_args.is_distinct
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CompactGroupsAccumulator::<TheilState>::new(
            TheilKind::T,
        )))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array};
    use datafusion::common::ScalarValue;

    use super::*;

    fn column(values: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn theil_t(values: &[f64], weights: &[f64]) -> Result<Option<f64>> {
        let mut accumulator = CompactAccumulator::<TheilState>::new(TheilKind::T);
        accumulator.update_batch(&[column(values), column(weights)])?;
        Ok(accumulator.result())
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
    fn equal_per_capita_gives_zero() -> Result<()> {
        assert_close(theil_t(&[10.0, 30.0, 5.0], &[100.0, 300.0, 50.0])?, 0.0);
        assert_close(theil_t(&[7.0, 7.0, 7.0, 7.0], &[1.0, 1.0, 1.0, 1.0])?, 0.0);
        Ok(())
    }

    #[test]
    fn one_unit_holding_everything() -> Result<()> {
        // s = 1 for the holder: T = ln(1 / p_holder); with n equal units, ln n.
        assert_close(
            theil_t(&[0.0, 50.0, 0.0, 0.0], &[1.0, 1.0, 1.0, 1.0])?,
            4f64.ln(),
        );
        assert_close(
            theil_t(&[0.0, 9.0, 0.0], &[500.0, 250.0, 250.0])?,
            4f64.ln(),
        );
        Ok(())
    }

    #[test]
    fn known_answers() -> Result<()> {
        // Reference: Python, straight from the share definition with math.fsum/math.log:
        //   v = [30, 12, 9, 40, 2]; w = [12, 8, 4.5, 20, 0.5]
        //   s = v / Σv; p = w / Σw; fsum(s*log(s/p) for s > 0)
        let values = [30.0, 12.0, 9.0, 40.0, 2.0];
        let weights = [12.0, 8.0, 4.5, 20.0, 0.5];
        assert_close(theil_t(&values, &weights)?, 0.01697809149017915);
        // The same plus a unit with value 0 and weight 3 (it contributes 0 itself).
        assert_close(
            theil_t(
                &[30.0, 12.0, 9.0, 40.0, 2.0, 0.0],
                &[12.0, 8.0, 4.5, 20.0, 0.5, 3.0],
            )?,
            0.0815166126277503,
        );
        Ok(())
    }

    #[test]
    fn undefined_cases_are_null() -> Result<()> {
        assert_eq!(theil_t(&[5.0], &[1.0])?, None);
        assert_eq!(theil_t(&[0.0, 0.0], &[1.0, 2.0])?, None);
        assert_eq!(theil_t(&[1.0, 2.0], &[0.0, 0.0])?, None);
        // Positive value with weight 0: infinite.
        assert_eq!(theil_t(&[1.0, 2.0, 3.0], &[1.0, 0.0, 1.0])?, None);
        // Weight 0 and value 0 is harmless.
        assert_close(theil_t(&[1.0, 0.0, 1.0], &[1.0, 0.0, 1.0])?, 0.0);
        Ok(())
    }

    #[test]
    fn negative_inputs_are_errors() {
        let error = theil_t(&[1.0, -1.0], &[1.0, 1.0]);
        assert!(error.is_err_and(|error| error.to_string().contains(NAME)));
        let error = theil_t(&[1.0, 1.0], &[1.0, -1.0]);
        assert!(error.is_err_and(|error| error.to_string().contains("weight")));
    }

    #[test]
    fn merged_partial_states_match_one_pass() -> Result<()> {
        let values = [30.0, 12.0, 9.0, 40.0, 2.0, 0.0];
        let weights = [12.0, 8.0, 4.5, 20.0, 0.5, 3.0];
        let whole = theil_t(&values, &weights)?;

        let mut merged = CompactAccumulator::<TheilState>::new(TheilKind::T);
        let mut partials = Vec::new();
        for (part_values, part_weights) in [
            (vec![0.0, 2.0, 40.0], vec![3.0, 0.5, 20.0]),
            (vec![9.0, 30.0, 12.0], vec![4.5, 12.0, 8.0]),
        ] {
            let mut partial = CompactAccumulator::<TheilState>::new(TheilKind::T);
            partial.update_batch(&[column(&part_values), column(&part_weights)])?;
            let state = partial
                .state()?
                .iter()
                .map(ScalarValue::to_array)
                .collect::<Result<Vec<_>>>()?;
            partials.push(state);
        }
        for state in partials.iter().rev() {
            merged.merge_batch(state)?;
        }
        let merged = merged.result();
        assert_close(merged, whole.unwrap_or(f64::NAN));
        Ok(())
    }
}
