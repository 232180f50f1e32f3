//! `theil_l(value, weight)`: Theil L index (mean log deviation) of an allocation.

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

const NAME: &str = "theil_l";

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns the Theil L index (GE(0), mean log deviation) of an allocation, as \
Float64: 0 when every unit gets the same amount per head. Compared with `theil_t` it is more \
sensitive to units that get little.

Each row is one unit with the `value` allocated to it (an amount, e.g. quota) and its `weight` \
(population). With amount shares `sᵢ = valueᵢ / Σ value` and population shares \
`pᵢ = weightᵢ / Σ weight`: `L = Σ pᵢ ln(pᵢ / sᵢ)`. A unit with weight 0 contributes 0. A unit \
with value 0 and a positive weight makes L infinite: the result is NULL (use `theil_t`, which \
is finite there, if such units are expected).

Rows where any argument is NULL are skipped. The result is NULL with fewer than 2 such rows or \
when the total value or total weight is 0. A negative or non-finite `value` or `weight` is an \
execution error. The partial state is compact (Σ value, Σ weight, Σ weight·ln(weight/value), \
with compensated sums), so results from any partitioning agree to about 1e-15.",
    syntax_example = "theil_l(value, weight)",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT theil_l(quota, population) FROM district_quota;
+---------------------------------------------------------+
| theil_l(district_quota.quota,district_quota.population) |
+---------------------------------------------------------+
| 0.01672672001329545                                     |
+---------------------------------------------------------+
```"#,
    argument(
        name = "value",
        description = "Amount allocated to the unit, ≥ 0, e.g. staffing quota (not a rate)."
    ),
    argument(name = "weight", description = "Population of the unit, ≥ 0.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TheilLFunc {
    signature: Signature,
}

impl Default for TheilLFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl TheilLFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![numeric_as_float64(), numeric_as_float64()],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for TheilLFunc {
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
            TheilKind::L,
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
            TheilKind::L,
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

    fn theil_l(values: &[f64], weights: &[f64]) -> Result<Option<f64>> {
        let mut accumulator = CompactAccumulator::<TheilState>::new(TheilKind::L);
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
        assert_close(theil_l(&[10.0, 30.0, 5.0], &[100.0, 300.0, 50.0])?, 0.0);
        assert_close(theil_l(&[3.0, 3.0], &[1.0, 1.0])?, 0.0);
        Ok(())
    }

    #[test]
    fn known_answers() -> Result<()> {
        // Reference: Python, straight from the share definition with math.fsum/math.log:
        //   v = [30, 12, 9, 40, 2]; w = [12, 8, 4.5, 20, 0.5]
        //   s = v / Σv; p = w / Σw; fsum(p*log(p/s) for p > 0)
        let values = [30.0, 12.0, 9.0, 40.0, 2.0];
        let weights = [12.0, 8.0, 4.5, 20.0, 0.5];
        assert_close(theil_l(&values, &weights)?, 0.016726720013296545);
        // Two equal-sized units, one with 3× the other's amount:
        // p = ½, s = ¼, ¾: L = ½ ln(2) + ½ ln(2/3), worked by hand.
        assert_close(
            theil_l(&[1.0, 3.0], &[5.0, 5.0])?,
            0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln(),
        );
        Ok(())
    }

    #[test]
    fn undefined_cases_are_null() -> Result<()> {
        assert_eq!(theil_l(&[5.0], &[1.0])?, None);
        // One unit holding everything: units with value 0 and people make L infinite.
        assert_eq!(theil_l(&[0.0, 50.0, 0.0], &[1.0, 1.0, 1.0])?, None);
        assert_eq!(theil_l(&[1.0, 2.0], &[0.0, 0.0])?, None);
        // A unit with weight 0 contributes nothing.
        // p = ½, ½, 0 and s = 2/9, 2/9, 5/9: L = ln(9/4).
        assert_close(
            theil_l(&[2.0, 2.0, 5.0], &[1.0, 1.0, 0.0])?,
            (9.0f64 / 4.0).ln(),
        );
        Ok(())
    }

    #[test]
    fn negative_inputs_are_errors() {
        let error = theil_l(&[1.0, -1.0], &[1.0, 1.0]);
        assert!(error.is_err_and(|error| error.to_string().contains(NAME)));
    }

    #[test]
    fn merged_partial_states_match_one_pass() -> Result<()> {
        let values = [30.0, 12.0, 9.0, 40.0, 2.0];
        let weights = [12.0, 8.0, 4.5, 20.0, 0.5];
        let whole = theil_l(&values, &weights)?;
        let mut merged = CompactAccumulator::<TheilState>::new(TheilKind::L);
        for (part_values, part_weights) in [
            (vec![40.0, 2.0], vec![20.0, 0.5]),
            (vec![9.0, 12.0, 30.0], vec![4.5, 8.0, 12.0]),
        ] {
            let mut partial = CompactAccumulator::<TheilState>::new(TheilKind::L);
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
