//! `mom_jump_z(x [, lookback, min_n])`: modified z-score of the change from
//! the previous row against a trailing baseline of earlier changes.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{
    ExpressionArgs, PartitionEvaluatorArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};
use datafusion::physical_expr::PhysicalExpr;
use datafusion_macros::user_doc;

use super::robust_z::{trailing_robust_z, TrailingBaseline};
use super::support::{
    finite, integer_as_int64, nullable_field, series_expression, series_of, signature_with_optional,
};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "mom_jump_z";

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Window function: how unusual the month-over-month **change** is. With \
`d_t = x_t − x_{t−1}` (the previous row of the ordered partition), returns the modified z-score \
`0.6745 × (d_t − median) / MAD` of `d_t` against the previous `lookback` changes \
`d_{t−lookback} … d_{t−1}`, as Float64 — exactly `robust_z` applied to the changes. The \
baseline never contains the current change, so a jump does not dampen its own score; a level \
that moved once and stays scores once, not every month after.

`d_t` is NULL when `x_t` or `x_{t−1}` is NULL (the first row's change is NULL): a change is \
always against the immediately previous row, not the last non-NULL one. The result is NULL when \
`d_t` is NULL, when fewer than `min_n` of the baseline changes are non-NULL, or when their MAD \
is 0 (e.g. a series that changed by the same amount every month). NaN and ±Infinity count as \
NULL. Give an `ORDER BY` (e.g. `ORDER BY month`); the window frame is ignored. `lookback` and \
`min_n` must be integer literals with `1 ≤ min_n ≤ lookback`.",
    syntax_example = "mom_jump_z(x [, lookback [, min_n]]) OVER (PARTITION BY series ORDER BY month)",
    sql_example = r#"```sql
-- unit_staff(unit, month, staff): unit 'A', months 1..8, staff
-- 50, 52, 51, 53, 52, 54, 53, 70
> SELECT month, staff, mom_jump_z(staff, 6, 4) OVER (PARTITION BY unit ORDER BY month) AS z
  FROM unit_staff ORDER BY month;
+-------+-------+-------------------+
| month | staff | z                 |
+-------+-------+-------------------+
| 1     | 50    |                   |
| 2     | 52    |                   |
| 3     | 51    |                   |
| 4     | 53    |                   |
| 5     | 52    |                   |
| 6     | 54    | 0.6745            |
| 7     | 53    |                   |
| 8     | 70    | 7.419499999999999 |
+-------+-------+-------------------+
```"#,
    argument(
        name = "x",
        description = "The monitored series, any numeric type (e.g. monthly staff count of a unit)."
    ),
    argument(
        name = "lookback",
        description = "Integer literal: how many earlier changes form the baseline. Default 12."
    ),
    argument(
        name = "min_n",
        description = "Integer literal: fewest non-NULL baseline changes for a score. Default 6 (or `lookback` if smaller)."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MomJumpZFunc {
    signature: Signature,
}

impl Default for MomJumpZFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MomJumpZFunc {
    pub fn new() -> Self {
        Self {
            signature: signature_with_optional(
                vec![numeric_as_float64()],
                vec![integer_as_int64(), integer_as_int64()],
            ),
        }
    }
}

impl WindowUDFImpl for MomJumpZFunc {
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
        Ok(Box::new(MomJumpZEvaluator { baseline }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(nullable_field(&field_args, DataType::Float64))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[derive(Debug)]
struct MomJumpZEvaluator {
    baseline: TrailingBaseline,
}

impl PartitionEvaluator for MomJumpZEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let series = series_of(NAME, values)?;
        let changes = changes_from_previous_row(&series);
        Ok(Arc::new(Float64Array::from(trailing_robust_z(
            &changes,
            self.baseline,
        ))))
    }
}

/// `x_t − x_{t−1}`; NULL for the first row and next to a NULL.
pub(crate) fn changes_from_previous_row(series: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut previous = None;
    series
        .iter()
        .map(|current| {
            let change = match (current, previous) {
                (Some(current), Some(previous)) => finite(current - previous),
                _ => None,
            };
            previous = *current;
            change
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::support::MODIFIED_Z_SCALE;
    use super::*;

    fn baseline(lookback: usize, min_values: usize) -> TrailingBaseline {
        TrailingBaseline {
            lookback,
            min_values,
        }
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
    fn changes_are_against_the_previous_row() {
        let series = vec![Some(1.0), Some(4.0), None, Some(6.0), Some(5.0)];
        assert_eq!(
            changes_from_previous_row(&series),
            vec![None, Some(3.0), None, None, Some(-1.0)]
        );
    }

    #[test]
    fn known_answers() {
        // Staff 50 52 51 53 52 54 53 70: changes NULL 2 −1 2 −1 2 −1 17.
        // Row 4: the 6 changes before are NULL 2 −1 2 → 3 values < 4 → NULL.
        // Row 5 (change 2): NULL 2 −1 2 −1 → sorted −1 −1 2 2: median 0.5,
        // deviations all 1.5 → MAD 1.5 → 0.6745 · 1.5 / 1.5.
        // Row 6: 2 −1 2 −1 2 → median 2, deviations 0 3 0 3 0 → MAD 0 → NULL.
        // Row 7 (change 17): 2 −1 2 −1 2 −1 → median 0.5, MAD 1.5 →
        // 0.6745 · 16.5 / 1.5 = 0.6745 · 11.
        let series: Vec<Option<f64>> = [50.0, 52.0, 51.0, 53.0, 52.0, 54.0, 53.0, 70.0]
            .into_iter()
            .map(Some)
            .collect();
        let changes = changes_from_previous_row(&series);
        let scores = trailing_robust_z(&changes, baseline(6, 4));
        assert_eq!(&scores[..5], &[None, None, None, None, None]);
        assert_close(scores[5], MODIFIED_Z_SCALE);
        assert_eq!(scores[6], None);
        assert_close(scores[7], MODIFIED_Z_SCALE * 11.0);
    }

    #[test]
    fn a_step_scores_once() {
        // A noisy series that steps up by 20 and stays there.
        let series: Vec<Option<f64>> = [10.0, 11.0, 10.0, 12.0, 10.0, 13.0, 33.0, 33.0]
            .into_iter()
            .map(Some)
            .collect();
        // Changes: NULL 1 −1 2 −2 3 20 0. Row 6: baseline 1 −1 2 −2 3, sorted
        // −2 −1 1 2 3: median 1, deviations 3 2 0 1 2 → sorted 0 1 2 2 3: MAD 2
        // → 0.6745 · 19 / 2.
        let scores = trailing_robust_z(&changes_from_previous_row(&series), baseline(5, 5));
        assert_close(scores[6], MODIFIED_Z_SCALE * 9.5);
        // Row 7 (change 0): baseline −1 2 −2 3 20, sorted −2 −1 2 3 20: median
        // 2, deviations 3 0 4 1 18 → sorted 0 1 3 4 18: MAD 3 → 0.6745 · −2 / 3.
        assert_close(scores[7], -MODIFIED_Z_SCALE * 2.0 / 3.0);
    }

    #[test]
    fn constant_changes_have_no_scale() {
        // Growth by exactly 2 every month: all changes 2, MAD 0 → NULL.
        let series: Vec<Option<f64>> = (0..10).map(|month| Some(2.0 * month as f64)).collect();
        let scores = trailing_robust_z(&changes_from_previous_row(&series), baseline(6, 3));
        assert!(scores.iter().all(Option::is_none));
    }
}
