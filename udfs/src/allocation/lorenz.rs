//! `lorenz(amount, population)`: points of the population-weighted Lorenz curve.

use std::mem::size_of_val;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{internal_err, not_impl_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{
    check_non_negative, extend_from_float64_lists, float64_argument, float64_list_scalar,
    float64_list_state_fields, for_each_complete_row, numeric_as_float64, zip_pairs,
    CompensatedSum,
};

const NAME: &str = "lorenz";

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns the Lorenz curve of an allocation, for plotting: a list of \
`{pop_share, value_share}` structs (both Float64, from 0 to 1).

Each row is one unit (e.g. a district) with the `amount` allocated to it (e.g. quota) and its \
`population`. Units are ordered by per-capita amount `amount / population`, lowest first \
(ties by amount, then population); the curve starts at `(0, 0)` and has one point per unit: \
`pop_share` = cumulative population / total population, `value_share` = cumulative amount / \
total amount, ending at `(1, 1)`. So a list of `n + 1` points for `n` units. The diagonal means \
equal per-capita allocation; `1 − 2 × (area under the curve)` is `gini(amount / population, \
population)`.

A unit with population 0 and a positive amount has an infinite per-capita amount and comes \
last (a vertical step); a unit with amount 0 and population 0 adds a repeated point. Rows \
where any argument is NULL are skipped. The result is NULL with fewer than 2 such rows or when \
the total amount or total population is 0. A negative or non-finite `amount` or `population` is \
an execution error. The result does not depend on row order or partitioning.",
    syntax_example = "lorenz(amount, population)",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT lorenz(quota, population) AS curve
  FROM district_quota WHERE district IN ('A', 'B', 'C');
+------------------------------------------------------------------------------+
| curve                                                                        |
+------------------------------------------------------------------------------+
| [{pop_share: 0.0, value_share: 0.0},                                         |
|  {pop_share: 0.32653061224489793, value_share: 0.23529411764705882},         |
|  {pop_share: 0.5102040816326531, value_share: 0.4117647058823529},           |
|  {pop_share: 1.0, value_share: 1.0}]                                         |
+------------------------------------------------------------------------------+
```"#,
    argument(
        name = "amount",
        description = "Amount allocated to the unit, ≥ 0, e.g. staffing quota (not a rate)."
    ),
    argument(name = "population", description = "Population of the unit, ≥ 0.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LorenzFunc {
    signature: Signature,
}

impl Default for LorenzFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl LorenzFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![numeric_as_float64(), numeric_as_float64()],
                Volatility::Immutable,
            ),
        }
    }
}

/// Fields of one curve point.
fn point_fields() -> Fields {
    Fields::from(vec![
        Field::new("pop_share", DataType::Float64, false),
        Field::new("value_share", DataType::Float64, false),
    ])
}

/// `List<Struct{pop_share, value_share}>`.
fn curve_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(point_fields()),
        true,
    )))
}

impl AggregateUDFImpl for LorenzFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(curve_type())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(float64_list_state_fields(
            args.name,
            &["amounts", "populations"],
        ))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{NAME}(DISTINCT ...) is not supported");
        }
        Ok(Box::<LorenzAccumulator>::default())
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Keeps every (amount, population) pair: the curve has a point per unit.
#[derive(Debug, Default)]
pub(crate) struct LorenzAccumulator {
    amounts: Vec<f64>,
    populations: Vec<f64>,
}

impl Accumulator for LorenzAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let columns = values
            .iter()
            .map(float64_argument)
            .collect::<Result<Vec<_>>>()?;
        for_each_complete_row(&columns, |row| {
            let [amount, population] = row else {
                return internal_err!("{NAME}: expected 2 arguments, got {}", row.len());
            };
            self.amounts
                .push(check_non_negative(NAME, "amount", *amount)?);
            self.populations
                .push(check_non_negative(NAME, "population", *population)?);
            Ok(())
        })
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut units = zip_pairs(NAME, &self.amounts, &self.populations)?;
        let Some(points) = lorenz_points(&mut units) else {
            return ScalarValue::try_from(&curve_type());
        };
        let (population_shares, value_shares): (Vec<f64>, Vec<f64>) = points.into_iter().unzip();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(population_shares)),
            Arc::new(Float64Array::from(value_shares)),
        ];
        let points = StructArray::try_new(point_fields(), columns, None)?;
        Ok(SingleRowListArrayBuilder::new(Arc::new(points)).build_list_scalar())
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + (self.amounts.capacity() + self.populations.capacity()) * size_of::<f64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            float64_list_scalar(&self.amounts),
            float64_list_scalar(&self.populations),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [amounts, populations] = states else {
            return internal_err!("{NAME}: expected 2 state columns, got {}", states.len());
        };
        extend_from_float64_lists(NAME, amounts, &mut self.amounts)?;
        extend_from_float64_lists(NAME, populations, &mut self.populations)
    }
}

/// Sort key: amount per head; a population of 0 puts a positive amount last.
fn per_capita(amount: f64, population: f64) -> f64 {
    if population > 0.0 {
        amount / population
    } else if amount > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// `(pop_share, value_share)` points from `(0, 0)` to `(1, 1)`, one per unit
/// after the origin; `None` when there are fewer than 2 units or a total is 0.
pub(crate) fn lorenz_points(units: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    if units.len() < 2 {
        return None;
    }
    units.sort_unstable_by(|left, right| {
        per_capita(left.0, left.1)
            .total_cmp(&per_capita(right.0, right.1))
            .then_with(|| left.0.total_cmp(&right.0))
            .then_with(|| left.1.total_cmp(&right.1))
    });
    let mut cumulative_amount = CompensatedSum::default();
    let mut cumulative_population = CompensatedSum::default();
    let mut cumulative = Vec::with_capacity(units.len());
    for &(amount, population) in units.iter() {
        cumulative_amount.add(amount);
        cumulative_population.add(population);
        cumulative.push((cumulative_population.value(), cumulative_amount.value()));
    }
    // The totals are the last cumulative sums, so the curve ends at exactly (1, 1).
    let (total_population, total_amount) = *cumulative.last()?;
    if total_population <= 0.0 || total_amount <= 0.0 {
        return None;
    }
    let mut points = Vec::with_capacity(units.len() + 1);
    points.push((0.0, 0.0));
    points.extend(
        cumulative
            .into_iter()
            .map(|(population, amount)| (population / total_population, amount / total_amount)),
    );
    Some(points)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Float64Type;

    use super::super::gini::gini_of_pairs;
    use super::*;

    fn column(values: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    /// `1 − Σ Δp (L_{k−1} + L_k)`: trapezoid Gini of a curve.
    fn gini_from_area(points: &[(f64, f64)]) -> f64 {
        let twice_area: f64 = points
            .windows(2)
            .map(|pair| (pair[1].0 - pair[0].0) * (pair[0].1 + pair[1].1))
            .sum();
        1.0 - twice_area
    }

    #[test]
    fn equal_per_capita_is_the_diagonal() {
        let mut units = vec![(10.0, 100.0), (30.0, 300.0), (5.0, 50.0)];
        let points = lorenz_points(&mut units).unwrap_or_default();
        assert_eq!(points.len(), 4);
        for (population_share, value_share) in points {
            assert!((population_share - value_share).abs() < 1e-12);
        }
    }

    #[test]
    fn known_curve() {
        // Per-capita: 0.5, 0.25, 1.0, so the order is B, A, C.
        // Population 200, 400, 400 of 1000; amounts 100, 100, 400 of 600.
        let mut units = vec![(100.0, 200.0), (100.0, 400.0), (400.0, 400.0)];
        let points = lorenz_points(&mut units).unwrap_or_default();
        let expected = [
            (0.0, 0.0),
            (0.4, 100.0 / 600.0),
            (0.6, 200.0 / 600.0),
            (1.0, 1.0),
        ];
        assert_eq!(points.len(), expected.len());
        for (actual, expected) in points.iter().zip(expected) {
            assert!((actual.0 - expected.0).abs() < 1e-12);
            assert!((actual.1 - expected.1).abs() < 1e-12);
        }
        assert_eq!(points.last(), Some(&(1.0, 1.0)));
    }

    #[test]
    fn one_unit_holding_everything() {
        let mut units = vec![(0.0, 250.0), (90.0, 250.0), (0.0, 500.0)];
        let points = lorenz_points(&mut units).unwrap_or_default();
        assert_eq!(
            points,
            vec![(0.0, 0.0), (0.25, 0.0), (0.75, 0.0), (1.0, 1.0)]
        );
        // Gini of population shares: 1 − p_holder.
        assert!((gini_from_area(&points) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn area_gini_matches_weighted_gini_of_rates() {
        let units = [
            (150.0, 120_000.0),
            (64.0, 80_000.0),
            (90.0, 45_000.0),
            (300.0, 200_000.0),
            (1.5, 5_000.0),
        ];
        let points = lorenz_points(&mut units.to_vec()).unwrap_or_default();
        let mut rates: Vec<(f64, f64)> = units
            .iter()
            .map(|(amount, population)| (amount / population, *population))
            .collect();
        let pairwise = gini_of_pairs(&mut rates).unwrap_or(f64::NAN);
        assert!((gini_from_area(&points) - pairwise).abs() < 1e-12);
    }

    #[test]
    fn zero_totals_and_single_rows_are_null() {
        assert_eq!(lorenz_points(&mut [(5.0, 10.0)]), None);
        assert_eq!(lorenz_points(&mut [(0.0, 10.0), (0.0, 5.0)]), None);
        assert_eq!(lorenz_points(&mut [(1.0, 0.0), (2.0, 0.0)]), None);
    }

    #[test]
    fn zero_population_with_amount_comes_last() {
        let mut units = vec![(5.0, 0.0), (5.0, 10.0)];
        let points = lorenz_points(&mut units).unwrap_or_default();
        assert_eq!(points, vec![(0.0, 0.0), (1.0, 0.5), (1.0, 1.0)]);
    }

    #[test]
    fn evaluates_to_list_of_structs_and_merges() -> Result<()> {
        let amounts = [100.0, 100.0, 400.0, 7.0];
        let populations = [200.0, 400.0, 400.0, 70.0];
        let mut whole = LorenzAccumulator::default();
        whole.update_batch(&[column(&amounts), column(&populations)])?;

        let mut first = LorenzAccumulator::default();
        first.update_batch(&[column(&amounts[2..]), column(&populations[2..])])?;
        let mut second = LorenzAccumulator::default();
        second.update_batch(&[column(&[100.0, 100.0]), column(&[400.0, 200.0])])?;
        let mut merged = LorenzAccumulator::default();
        for partial in [&mut first, &mut second] {
            let state = partial
                .state()?
                .iter()
                .map(|scalar| scalar.to_array())
                .collect::<Result<Vec<_>>>()?;
            merged.merge_batch(&state)?;
        }
        let result = merged.evaluate()?;
        assert_eq!(result, whole.evaluate()?);
        assert_eq!(result.data_type(), curve_type());
        let ScalarValue::List(list) = result else {
            unreachable!("lorenz evaluates to a list");
        };
        let points = list.value(0);
        let points = points.as_struct();
        assert_eq!(points.len(), 5);
        let value_shares = points.column(1).as_primitive::<Float64Type>();
        assert_eq!(value_shares.value(4), 1.0);
        Ok(())
    }

    #[test]
    fn empty_input_is_null() -> Result<()> {
        let mut accumulator = LorenzAccumulator::default();
        let result = accumulator.evaluate()?;
        assert!(result.is_null());
        assert_eq!(result.data_type(), curve_type());
        Ok(())
    }
}
