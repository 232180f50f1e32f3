//! `mad(x)`: median absolute deviation, unscaled.

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{not_impl_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{median_and_mad_of_sorted, FiniteSample};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "mad";

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Returns the median absolute deviation `median(|x − median(x)|)` of `x`, as \
Float64. **Unscaled**: for normal data `1.4826 × mad(x)` estimates σ; the modified z-score is \
`0.6745 × (x − median) / mad`. The median of an even count is the mean of the two middle values. \
One value gives 0.

NULL, NaN and ±Infinity are skipped; the result is NULL when nothing is left. The result does \
not depend on row order or partitioning (values are sorted; the partial state keeps every \
value).",
    syntax_example = "mad(x)",
    sql_example = r#"```sql
> SELECT mad(x) FROM (VALUES (1), (2), (3), (4), (100)) AS t(x);
+----------+
| mad(t.x) |
+----------+
| 1.0      |
+----------+
```"#,
    argument(name = "x", description = "Values of any numeric type.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MedianAbsoluteDeviationFunc {
    signature: Signature,
}

impl Default for MedianAbsoluteDeviationFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MedianAbsoluteDeviationFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![numeric_as_float64()], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for MedianAbsoluteDeviationFunc {
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
        Ok(Box::<MedianAbsoluteDeviationAccumulator>::default())
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[derive(Debug, Default)]
pub(crate) struct MedianAbsoluteDeviationAccumulator {
    sample: FiniteSample,
}

impl Accumulator for MedianAbsoluteDeviationAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.sample.update(NAME, values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut deviations = Vec::new();
        let mad =
            median_and_mad_of_sorted(self.sample.sorted(), &mut deviations).map(|(_, mad)| mad);
        Ok(ScalarValue::Float64(mad))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Float64Array;

    use super::*;

    fn column(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn mad_of(values: &[Option<f64>]) -> Result<ScalarValue> {
        let mut accumulator = MedianAbsoluteDeviationAccumulator::default();
        accumulator.update_batch(&[column(values)])?;
        accumulator.evaluate()
    }

    #[test]
    fn known_answers() -> Result<()> {
        // 1 2 3 4 100: median 3, |x − 3| = 2 1 0 1 97 → sorted 0 1 1 2 97: 1.
        let outlier = [Some(100.0), Some(2.0), Some(4.0), Some(1.0), Some(3.0)];
        assert_eq!(mad_of(&outlier)?, ScalarValue::Float64(Some(1.0)));
        // 1 2 3 4: median 2.5, deviations 1.5 .5 .5 1.5 → (0.5 + 1.5) / 2 = 1.
        let even = [Some(1.0), Some(2.0), Some(3.0), Some(4.0)];
        assert_eq!(mad_of(&even)?, ScalarValue::Float64(Some(1.0)));
        // 2 4 4 4 5 5 7 9: median 4.5, deviations 2.5 .5 .5 .5 .5 .5 2.5 4.5
        // → sorted .5 .5 .5 .5 .5 2.5 2.5 4.5: (0.5 + 0.5) / 2 = 0.5.
        let values: Vec<Option<f64>> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .into_iter()
            .map(Some)
            .collect();
        assert_eq!(mad_of(&values)?, ScalarValue::Float64(Some(0.5)));
        assert_eq!(mad_of(&[Some(7.0)])?, ScalarValue::Float64(Some(0.0)));
        Ok(())
    }

    #[test]
    fn nulls_are_skipped_and_empty_is_null() -> Result<()> {
        let with_nulls = [Some(1.0), None, Some(2.0), Some(f64::NAN), Some(3.0)];
        // 1 2 3: median 2, deviations 1 0 1 → 1.
        assert_eq!(mad_of(&with_nulls)?, ScalarValue::Float64(Some(1.0)));
        assert_eq!(mad_of(&[])?, ScalarValue::Float64(None));
        assert_eq!(mad_of(&[None])?, ScalarValue::Float64(None));
        Ok(())
    }

    #[test]
    fn order_and_partitioning_do_not_matter() -> Result<()> {
        let values = [3.25, -1.0, 8.5, 0.0, 12.0, 3.25, 7.0, -4.5, 100.0, 0.1];
        let forward: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
        let backward: Vec<Option<f64>> = values.iter().rev().copied().map(Some).collect();
        let whole = mad_of(&forward)?;
        assert_eq!(mad_of(&backward)?, whole);
        let mut merged = MedianAbsoluteDeviationAccumulator::default();
        for part in [&backward[7..], &backward[..3], &backward[3..7]] {
            let mut partial = MedianAbsoluteDeviationAccumulator::default();
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
