//! `iqr(x)`: interquartile range Q3 − Q1, quartiles by linear interpolation.

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{not_impl_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{quantile_of_sorted, FiniteSample};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "iqr";

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Returns the interquartile range `Q3 − Q1` of `x`, as Float64. Quartiles are \
interpolated linearly between closest ranks — the method of PostgreSQL's \
`percentile_cont(0.25)` / `percentile_cont(0.75)` and numpy's default: with the `n` values \
sorted, `Q(p)` sits at position `(n − 1) p` counted from 0. One value gives 0.

NULL, NaN and ±Infinity are skipped; the result is NULL when nothing is left. The result does \
not depend on row order or partitioning (values are sorted; the partial state keeps every \
value).",
    syntax_example = "iqr(x)",
    sql_example = r#"```sql
> SELECT iqr(x) FROM (VALUES (1), (2), (3), (4)) AS t(x);
+----------+
| iqr(t.x) |
+----------+
| 1.5      |
+----------+
```"#,
    argument(name = "x", description = "Values of any numeric type.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InterquartileRangeFunc {
    signature: Signature,
}

impl Default for InterquartileRangeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl InterquartileRangeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![numeric_as_float64()], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for InterquartileRangeFunc {
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
        Ok(FiniteSample::state_fields(args.name))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{NAME}(DISTINCT ...) is not supported");
        }
        Ok(Box::<InterquartileRangeAccumulator>::default())
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[derive(Debug, Default)]
pub(crate) struct InterquartileRangeAccumulator {
    sample: FiniteSample,
}

impl Accumulator for InterquartileRangeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.sample.update(NAME, values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let range = quartiles_of_sorted(self.sample.sorted()).map(|(first, third)| third - first);
        Ok(ScalarValue::Float64(range))
    }

    fn size(&self) -> usize {
        self.sample.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.sample.state())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.sample.merge(NAME, states)
    }
}

/// `(Q1, Q3)` of sorted values; `None` when empty.
pub(crate) fn quartiles_of_sorted(sorted: &[f64]) -> Option<(f64, f64)> {
    Some((
        quantile_of_sorted(sorted, 0.25)?,
        quantile_of_sorted(sorted, 0.75)?,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Float64Array;

    use super::*;

    fn column(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn iqr_of(values: &[Option<f64>]) -> Result<ScalarValue> {
        let mut accumulator = InterquartileRangeAccumulator::default();
        accumulator.update_batch(&[column(values)])?;
        accumulator.evaluate()
    }

    #[test]
    fn known_answers() -> Result<()> {
        // 1 2 3 4: Q1 at position 0.75 → 1.75, Q3 at 2.25 → 3.25; IQR 1.5
        // (numpy.subtract(*numpy.percentile([1, 2, 3, 4], [75, 25])) = 1.5).
        assert_eq!(
            iqr_of(&[Some(4.0), Some(1.0), Some(3.0), Some(2.0)])?,
            ScalarValue::Float64(Some(1.5))
        );
        // 7 values 1..7: Q1 at position 1.5 → 2.5, Q3 at 4.5 → 5.5: IQR 3.
        let values: Vec<Option<f64>> = (1..=7).map(|value| Some(value as f64)).collect();
        assert_eq!(iqr_of(&values)?, ScalarValue::Float64(Some(3.0)));
        assert_eq!(iqr_of(&[Some(5.0)])?, ScalarValue::Float64(Some(0.0)));
        Ok(())
    }

    #[test]
    fn empty_or_all_null_is_null() -> Result<()> {
        assert_eq!(iqr_of(&[])?, ScalarValue::Float64(None));
        assert_eq!(iqr_of(&[None, Some(f64::NAN)])?, ScalarValue::Float64(None));
        Ok(())
    }

    #[test]
    fn order_and_partitioning_do_not_matter() -> Result<()> {
        let values = [3.5, -1.0, 8.25, 0.0, 12.0, 3.5, 7.0, -4.5, 100.0];
        let forward: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
        let backward: Vec<Option<f64>> = values.iter().rev().copied().map(Some).collect();
        let whole = iqr_of(&forward)?;
        assert_eq!(iqr_of(&backward)?, whole);
        let mut merged = InterquartileRangeAccumulator::default();
        for part in [&backward[..4], &backward[4..]] {
            let mut partial = InterquartileRangeAccumulator::default();
            partial.update_batch(&[column(part)])?;
            let state = partial
                .state()?
                .iter()
                .map(ScalarValue::to_array)
                .collect::<Result<Vec<_>>>()?;
            merged.merge_batch(&state)?;
        }
        assert_eq!(merged.evaluate()?, whole);
        Ok(())
    }
}
