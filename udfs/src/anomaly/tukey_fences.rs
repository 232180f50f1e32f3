//! `tukey_fences(x [, k])`: Tukey's fences `Q1 − k·IQR` and `Q3 + k·IQR`.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::common::{not_impl_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Documentation, Signature};
use datafusion::physical_expr::PhysicalExpr;
use datafusion_macros::user_doc;

use super::iqr::quartiles_of_sorted;
use super::support::{constant_float, signature_with_optional, FiniteSample};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "tukey_fences";

/// Tukey's multiplier when the call does not give one.
pub(crate) const DEFAULT_FENCE_MULTIPLIER: f64 = 1.5;

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Returns Tukey's fences of `x` as a struct `{lower, upper}` of Float64: \
`lower = Q1 − k × IQR`, `upper = Q3 + k × IQR` with `IQR = Q3 − Q1`. Values outside are \
outliers (k = 1.5) or far out (k = 3). Quartiles are interpolated linearly between closest \
ranks, as in `iqr` and PostgreSQL's `percentile_cont`. When the IQR is 0 both fences sit on the \
quartiles; they are still returned.

NULL, NaN and ±Infinity are skipped; the whole struct is NULL when nothing is left. `k` must be \
a numeric literal ≥ 0 (default 1.5). Read a fence with `tukey_fences(x, 1.5)['upper']`. The \
result does not depend on row order or partitioning.",
    syntax_example = "tukey_fences(x [, k])",
    sql_example = r#"```sql
> SELECT tukey_fences(x, 1.5) AS fences FROM (VALUES (1), (2), (3), (4)) AS t(x);
+---------------------------+
| fences                    |
+---------------------------+
| {lower: -0.5, upper: 5.5} |
+---------------------------+
```"#,
    argument(name = "x", description = "Values of any numeric type."),
    argument(
        name = "k",
        description = "Numeric literal ≥ 0: fence distance in IQRs. Default 1.5."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TukeyFencesFunc {
    signature: Signature,
}

impl Default for TukeyFencesFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl TukeyFencesFunc {
    pub fn new() -> Self {
        Self {
            signature: signature_with_optional(
                vec![numeric_as_float64()],
                vec![numeric_as_float64()],
            ),
        }
    }
}

/// Fields of the result struct.
fn fence_fields() -> Fields {
    Fields::from(vec![
        Field::new("lower", DataType::Float64, true),
        Field::new("upper", DataType::Float64, true),
    ])
}

impl AggregateUDFImpl for TukeyFencesFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(fence_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(FiniteSample::state_fields(args.name))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{NAME}(DISTINCT ...) is not supported");
        }
        let multiplier = fence_multiplier(NAME, acc_args.exprs, 1)?;
        Ok(Box::new(TukeyFencesAccumulator::new(multiplier)))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The constant `k` argument at `index`: a number ≥ 0.
pub(crate) fn fence_multiplier(
    function: &str,
    arguments: &[Arc<dyn PhysicalExpr>],
    index: usize,
) -> Result<f64> {
    let multiplier = constant_float(function, "k", arguments, index, DEFAULT_FENCE_MULTIPLIER)?;
    if multiplier < 0.0 {
        return plan_err!("{function}: k must not be negative, got {multiplier}");
    }
    Ok(multiplier)
}

/// Lower and upper fence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fences {
    pub(crate) lower: f64,
    pub(crate) upper: f64,
}

/// Fences of sorted values; `None` when empty.
pub(crate) fn fences_of_sorted(sorted: &[f64], multiplier: f64) -> Option<Fences> {
    let (first, third) = quartiles_of_sorted(sorted)?;
    let spread = third - first;
    Some(Fences {
        lower: first - multiplier * spread,
        upper: third + multiplier * spread,
    })
}

#[derive(Debug)]
pub(crate) struct TukeyFencesAccumulator {
    multiplier: f64,
    sample: FiniteSample,
}

impl TukeyFencesAccumulator {
    pub(crate) fn new(multiplier: f64) -> Self {
        Self {
            multiplier,
            sample: FiniteSample::default(),
        }
    }
}

impl Accumulator for TukeyFencesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.sample.update(NAME, values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(fences) = fences_of_sorted(self.sample.sorted(), self.multiplier) else {
            return Ok(ScalarStructBuilder::new_null(fence_fields()));
        };
        let fields = fence_fields();
        let mut builder = ScalarStructBuilder::new();
        for (field, value) in fields.iter().zip([fences.lower, fences.upper]) {
            builder = builder.with_scalar(Arc::clone(field), ScalarValue::Float64(Some(value)));
        }
        builder.build()
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
    use arrow::array::{Array, AsArray, Float64Array};
    use arrow::datatypes::Float64Type;
    use datafusion::physical_expr::expressions::lit;

    use super::*;

    fn column(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn fences_of(values: &[Option<f64>], multiplier: f64) -> Result<Option<Fences>> {
        let mut accumulator = TukeyFencesAccumulator::new(multiplier);
        accumulator.update_batch(&[column(values)])?;
        let ScalarValue::Struct(fences) = accumulator.evaluate()? else {
            panic!("tukey_fences evaluates to a struct");
        };
        if fences.is_null(0) {
            return Ok(None);
        }
        let field = |index: usize| fences.column(index).as_primitive::<Float64Type>().value(0);
        Ok(Some(Fences {
            lower: field(0),
            upper: field(1),
        }))
    }

    #[test]
    fn known_answers() -> Result<()> {
        // 1 2 3 4: Q1 1.75, Q3 3.25, IQR 1.5 → 1.75 − 2.25 = −0.5, 3.25 + 2.25 = 5.5.
        let values = [Some(3.0), Some(1.0), Some(4.0), Some(2.0)];
        assert_eq!(
            fences_of(&values, 1.5)?,
            Some(Fences {
                lower: -0.5,
                upper: 5.5
            })
        );
        // k = 3 (far out): 1.75 − 4.5 = −2.75, 3.25 + 4.5 = 7.75.
        assert_eq!(
            fences_of(&values, 3.0)?,
            Some(Fences {
                lower: -2.75,
                upper: 7.75
            })
        );
        // IQR 0: 5 5 5 5 9 has Q1 = Q3 = 5, so both fences are 5.
        let flat = [Some(5.0), Some(5.0), Some(9.0), Some(5.0), Some(5.0)];
        assert_eq!(
            fences_of(&flat, 1.5)?,
            Some(Fences {
                lower: 5.0,
                upper: 5.0
            })
        );
        Ok(())
    }

    #[test]
    fn empty_is_a_null_struct() -> Result<()> {
        assert_eq!(fences_of(&[None, None], 1.5)?, None);
        assert_eq!(fences_of(&[], 1.5)?, None);
        Ok(())
    }

    #[test]
    fn order_does_not_matter() -> Result<()> {
        let values: Vec<Option<f64>> = [9.5, -3.0, 4.25, 0.0, 17.0, 2.0, 2.0]
            .into_iter()
            .map(Some)
            .collect();
        let reversed: Vec<Option<f64>> = values.iter().rev().copied().collect();
        assert_eq!(fences_of(&values, 1.5)?, fences_of(&reversed, 1.5)?);
        Ok(())
    }

    #[test]
    fn multiplier_is_checked() -> Result<()> {
        let sample = lit(ScalarValue::Float64(Some(1.0)));
        assert_eq!(fence_multiplier(NAME, &[Arc::clone(&sample)], 1)?, 1.5);
        let negative = [sample, lit(ScalarValue::Float64(Some(-1.0)))];
        let error = fence_multiplier(NAME, &negative, 1);
        assert!(error.is_err_and(|error| error.to_string().contains("tukey_fences: k")));
        Ok(())
    }
}
