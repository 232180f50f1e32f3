//! `robust_z(x [, lookback, min_n])`: modified z-score of each row against a
//! trailing baseline of the rows before it.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::function::{
    ExpressionArgs, PartitionEvaluatorArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};
use datafusion::physical_expr::PhysicalExpr;
use datafusion_macros::user_doc;

use super::support::{
    constant_count, integer_as_int64, median_and_mad_of_sorted, modified_z, nullable_field,
    series_expression, series_of, signature_with_optional, sort_values,
};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "robust_z";

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Window function: the modified z-score `0.6745 × (x − median) / MAD` of each \
row against a **trailing baseline**, as Float64. The baseline is the previous `lookback` rows of \
the ordered partition, **not** including the current row, so a spike does not dampen its own \
score; of those rows only non-NULL values count. `median` and `MAD = median(|v − median|)` are \
those of the baseline values (the middle of an even count is the mean of the two middle values). \
|score| > 3.5 is the usual outlier rule (Iglewicz and Hoaglin).

The result is NULL when `x` is NULL, when the baseline holds fewer than `min_n` non-NULL values \
(the first rows of every partition), or when the baseline's MAD is 0 (no spread, so no scale: \
e.g. a quota unchanged for a year). NaN and ±Infinity count as NULL. Rows are taken in the \
window's `ORDER BY` (give one, e.g. `ORDER BY month`; without it the order is arbitrary); the \
window frame is ignored. `lookback` and `min_n` must be integer literals with \
`1 ≤ min_n ≤ lookback`; anything else is a planning error.",
    syntax_example = "robust_z(x [, lookback [, min_n]]) OVER (PARTITION BY series ORDER BY month)",
    sql_example = r#"```sql
-- unit_staff(unit, month, staff): unit 'A', months 1..8, staff
-- 50, 52, 51, 53, 52, 54, 53, 70
> SELECT month, staff, robust_z(staff, 6, 4) OVER (PARTITION BY unit ORDER BY month) AS z
  FROM unit_staff ORDER BY month;
+-------+-------+--------------------+
| month | staff | z                  |
+-------+-------+--------------------+
| 1     | 50    |                    |
| 2     | 52    |                    |
| 3     | 51    |                    |
| 4     | 53    |                    |
| 5     | 52    | 0.33725            |
| 6     | 54    | 1.349              |
| 7     | 53    | 0.6745             |
| 8     | 70    | 23.607499999999998 |
+-------+-------+--------------------+
```"#,
    argument(
        name = "x",
        description = "The monitored series, any numeric type (e.g. monthly staff count of a unit)."
    ),
    argument(
        name = "lookback",
        description = "Integer literal: how many rows before the current one form the baseline. Default 12."
    ),
    argument(
        name = "min_n",
        description = "Integer literal: fewest non-NULL baseline values for a score. Default 6 (or `lookback` if smaller)."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RobustZFunc {
    signature: Signature,
}

impl Default for RobustZFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl RobustZFunc {
    pub fn new() -> Self {
        Self {
            signature: signature_with_optional(
                vec![numeric_as_float64()],
                vec![integer_as_int64(), integer_as_int64()],
            ),
        }
    }
}

impl WindowUDFImpl for RobustZFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn expressions(&self, expr_args: ExpressionArgs) -> Vec<Arc<dyn PhysicalExpr>> {
        series_expression(expr_args)
    }

    fn partition_evaluator(
        &self,
        partition_evaluator_args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let baseline =
            TrailingBaseline::from_arguments(NAME, partition_evaluator_args.input_exprs())?;
        Ok(Box::new(RobustZEvaluator { baseline }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(nullable_field(&field_args, DataType::Float64))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// How far back the baseline reaches and how full it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrailingBaseline {
    /// Rows before the current one.
    pub(crate) lookback: usize,
    /// Fewest non-NULL values for a score.
    pub(crate) min_values: usize,
}

impl TrailingBaseline {
    pub(crate) const DEFAULT: Self = Self {
        lookback: 12,
        min_values: 6,
    };

    /// Reads `(x [, lookback, min_n])` of a call to `function`.
    pub(crate) fn from_arguments(
        function: &str,
        arguments: &[Arc<dyn PhysicalExpr>],
    ) -> Result<Self> {
        let lookback = constant_count(function, "lookback", arguments, 1, Self::DEFAULT.lookback)?;
        let default_min = Self::DEFAULT.min_values.min(lookback);
        let min_values = constant_count(function, "min_n", arguments, 2, default_min)?;
        if min_values > lookback {
            return plan_err!(
                "{function}: min_n ({min_values}) must not exceed lookback ({lookback})"
            );
        }
        Ok(Self {
            lookback,
            min_values,
        })
    }
}

#[derive(Debug)]
struct RobustZEvaluator {
    baseline: TrailingBaseline,
}

impl PartitionEvaluator for RobustZEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let series = series_of(NAME, values)?;
        Ok(Arc::new(Float64Array::from(trailing_robust_z(
            &series,
            self.baseline,
        ))))
    }
}

/// Modified z-score of every row against the non-NULL values among the
/// `lookback` rows before it. O(lookback · log lookback) per row.
pub(crate) fn trailing_robust_z(
    series: &[Option<f64>],
    baseline: TrailingBaseline,
) -> Vec<Option<f64>> {
    let mut window = Vec::with_capacity(baseline.lookback);
    let mut deviations = Vec::with_capacity(baseline.lookback);
    series
        .iter()
        .enumerate()
        .map(|(row, value)| {
            let value = (*value)?;
            let before = series.get(row.saturating_sub(baseline.lookback)..row)?;
            window.clear();
            window.extend(before.iter().flatten());
            if window.len() < baseline.min_values {
                return None;
            }
            sort_values(&mut window);
            let (median, mad) = median_and_mad_of_sorted(&window, &mut deviations)?;
            modified_z(value, median, mad)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Field, Float64Type};
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{col, lit};

    use super::super::support::MODIFIED_Z_SCALE;
    use super::*;

    fn baseline(lookback: usize, min_values: usize) -> TrailingBaseline {
        TrailingBaseline {
            lookback,
            min_values,
        }
    }

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
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
    fn known_answers() {
        // Row 4 (value 52): baseline 50 52 51 53, sorted 50 51 52 53:
        // median 51.5, |v − 51.5| = 1.5 .5 .5 1.5, MAD 1 → 0.6745 · 0.5.
        // Row 7 (value 70): baseline 52 51 53 52 54 53 (the 6 rows before),
        // sorted 51 52 52 53 53 54: median 52.5, deviations 1.5 .5 .5 .5 .5
        // 1.5, MAD .5 → 0.6745 · 17.5 / 0.5 = 23.6075.
        let series = some(&[50.0, 52.0, 51.0, 53.0, 52.0, 54.0, 53.0, 70.0]);
        let scores = trailing_robust_z(&series, baseline(6, 4));
        assert_eq!(&scores[..4], &[None, None, None, None]);
        assert_close(scores[4], MODIFIED_Z_SCALE * 0.5);
        assert_close(scores[7], 23.6075);
    }

    #[test]
    fn baseline_excludes_the_current_row() {
        // Baseline 1 2 4: median 2, deviations 1 0 2 → MAD 1, so the spike
        // scores 0.6745 · 98. Were the spike in its own baseline (1 2 4 100:
        // median 3, deviations 2 1 1 97 → MAD 1.5) it would score only
        // 0.6745 · 97 / 1.5.
        let series = some(&[1.0, 2.0, 4.0, 100.0, 3.0]);
        let scores = trailing_robust_z(&series, baseline(3, 3));
        assert_close(scores[3], MODIFIED_Z_SCALE * 98.0);
        // The row after the spike has it in its baseline: 2 4 100, median 4,
        // deviations 2 0 96 → MAD 2 → 0.6745 · (3 − 4) / 2.
        assert_close(scores[4], -MODIFIED_Z_SCALE / 2.0);
    }

    #[test]
    fn lookback_counts_rows_and_skips_nulls() {
        // Row 5: the 4 rows before are 3 NULL 2 NULL → 2 values, fewer than 3.
        let series = vec![
            Some(1.0),
            Some(3.0),
            None,
            Some(2.0),
            None,
            Some(4.0),
            Some(9.0),
        ];
        let scores = trailing_robust_z(&series, baseline(4, 3));
        assert_eq!(scores[5], None);
        // Row 6: the 4 rows before are NULL 2 NULL 4 → still 2 values.
        assert_eq!(scores[6], None);
        // With lookback 6, row 6 sees 1 3 2 4: median 2.5, MAD 1 → 0.6745 · 6.5.
        let scores = trailing_robust_z(&series, baseline(6, 3));
        assert_close(scores[6], MODIFIED_Z_SCALE * 6.5);
        // NULL and non-finite current values give NULL.
        assert_eq!(scores[4], None);
    }

    #[test]
    fn zero_mad_is_null() {
        // Baseline 5 5 5 6 5: median 5, deviations 0 0 0 1 0 → MAD 0.
        let series = some(&[5.0, 5.0, 5.0, 6.0, 5.0, 9.0]);
        assert_eq!(trailing_robust_z(&series, baseline(5, 3))[5], None);
    }

    fn evaluator_arguments(constants: Vec<ScalarValue>) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
        let schema = arrow::datatypes::Schema::new(vec![Field::new("x", DataType::Float64, true)]);
        let mut arguments = vec![col("x", &schema)?];
        arguments.extend(constants.into_iter().map(lit));
        Ok(arguments)
    }

    #[test]
    fn arguments_default_and_validate() -> Result<()> {
        assert_eq!(
            TrailingBaseline::from_arguments(NAME, &evaluator_arguments(vec![])?)?,
            TrailingBaseline::DEFAULT
        );
        let short = evaluator_arguments(vec![ScalarValue::Int64(Some(4))])?;
        assert_eq!(
            TrailingBaseline::from_arguments(NAME, &short)?,
            baseline(4, 4)
        );
        let inverted = evaluator_arguments(vec![
            ScalarValue::Int64(Some(4)),
            ScalarValue::Int64(Some(5)),
        ])?;
        let error = TrailingBaseline::from_arguments(NAME, &inverted);
        assert!(error.is_err_and(|error| error.to_string().contains("robust_z: min_n")));
        Ok(())
    }

    #[test]
    fn evaluates_a_partition() -> Result<()> {
        let mut evaluator = RobustZEvaluator {
            baseline: baseline(3, 3),
        };
        let column: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![
            Some(1),
            Some(2),
            Some(4),
            Some(8),
            None,
        ]));
        let result = evaluator.evaluate_all(&[column], 5)?;
        let result = result.as_primitive::<Float64Type>();
        assert_eq!(result.len(), 5);
        // Baseline 1 2 4: median 2, deviations 1 0 2 → MAD 1 → 0.6745 · 6.
        assert_close(
            result.is_valid(3).then(|| result.value(3)),
            MODIFIED_Z_SCALE * 6.0,
        );
        assert!(result.is_null(4));
        Ok(())
    }
}
