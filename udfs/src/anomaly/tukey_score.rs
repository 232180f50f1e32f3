//! `tukey_score(x [, k])`: signed distance beyond the Tukey fences of the
//! whole window partition.

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

use super::support::{
    nullable_field, series_expression, series_of, signature_with_optional, sort_values,
};
use super::tukey_fences::{fence_multiplier, fences_of_sorted, Fences};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "tukey_score";

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Window function: how far `x` lies beyond the Tukey fences of its partition, \
as Float64 in the units of `x` — 0 inside `[Q1 − k × IQR, Q3 + k × IQR]`, `x − lower` \
(negative) below, `x − upper` (positive) above. The fences are those of `tukey_fences(x, k)` \
over the whole partition (the current row included, as in a box plot): quartiles interpolated \
linearly between closest ranks, like PostgreSQL's `percentile_cont`. An IQR of 0 is not \
special: the fences sit on the quartiles and anything else scores its distance from them.

The result is NULL when `x` is NULL. NULL, NaN and ±Infinity are left out of the quartiles. The \
peer group is the `PARTITION BY`; an `ORDER BY` and the window frame are ignored. `k` must be a \
numeric literal ≥ 0 (default 1.5; 3 for far-out values).",
    syntax_example = "tukey_score(x [, k]) OVER (PARTITION BY peers)",
    sql_example = r#"```sql
-- unit_staff(unit, tier, staff): tier 'county', staff 10, 12, 11, 13, 40
> SELECT unit, staff, tukey_score(staff, 1.5) OVER (PARTITION BY tier) AS beyond
  FROM unit_staff ORDER BY unit;
+------+-------+--------+
| unit | staff | beyond |
+------+-------+--------+
| A    | 10    | 0.0    |
| B    | 12    | 0.0    |
| C    | 11    | 0.0    |
| D    | 13    | 0.0    |
| E    | 40    | 24.0   |
+------+-------+--------+
```"#,
    argument(name = "x", description = "Values of any numeric type."),
    argument(
        name = "k",
        description = "Numeric literal ≥ 0: fence distance in IQRs. Default 1.5."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TukeyScoreFunc {
    signature: Signature,
}

impl Default for TukeyScoreFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl TukeyScoreFunc {
    pub fn new() -> Self {
        Self {
            signature: signature_with_optional(
                vec![numeric_as_float64()],
                vec![numeric_as_float64()],
            ),
        }
    }
}

impl WindowUDFImpl for TukeyScoreFunc {
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
        let multiplier = fence_multiplier(NAME, partition_evaluator_args.input_exprs(), 1)?;
        Ok(Box::new(TukeyScoreEvaluator { multiplier }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(nullable_field(&field_args, DataType::Float64))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[derive(Debug)]
struct TukeyScoreEvaluator {
    multiplier: f64,
}

impl PartitionEvaluator for TukeyScoreEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let values = series_of(NAME, values)?;
        Ok(Arc::new(Float64Array::from(tukey_scores(
            &values,
            self.multiplier,
        ))))
    }
}

/// Signed distance of `value` beyond the fences; 0 inside (bounds included).
pub(crate) fn distance_beyond(value: f64, fences: Fences) -> f64 {
    if value < fences.lower {
        value - fences.lower
    } else if value > fences.upper {
        value - fences.upper
    } else {
        0.0
    }
}

/// Every row's distance beyond the fences of all non-NULL values.
pub(crate) fn tukey_scores(values: &[Option<f64>], multiplier: f64) -> Vec<Option<f64>> {
    let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
    sort_values(&mut sorted);
    let Some(fences) = fences_of_sorted(&sorted, multiplier) else {
        return vec![None; values.len()];
    };
    values
        .iter()
        .map(|value| value.map(|value| distance_beyond(value, fences)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // 10 12 11 13 40 sorted 10 11 12 13 40: Q1 at position 1 = 11, Q3 at
        // 3 = 13, IQR 2 → fences 8 and 16; 40 is 24 above.
        let values = vec![Some(10.0), Some(12.0), Some(11.0), Some(13.0), Some(40.0)];
        assert_eq!(
            tukey_scores(&values, 1.5),
            vec![Some(0.0), Some(0.0), Some(0.0), Some(0.0), Some(24.0)]
        );
        // Below: −20 with the same others, sorted −20 10 11 12 13: Q1 10, Q3
        // 12, IQR 2 → fences 7 and 15; −20 is 27 below.
        let values = vec![Some(-20.0), Some(10.0), Some(11.0), Some(12.0), Some(13.0)];
        assert_eq!(tukey_scores(&values, 1.5)[0], Some(-27.0));
        // k = 0: the fences are the quartiles themselves.
        assert_eq!(
            tukey_scores(&values, 0.0),
            vec![Some(-30.0), Some(0.0), Some(0.0), Some(0.0), Some(1.0)]
        );
    }

    #[test]
    fn fences_are_inclusive() {
        let fences = Fences {
            lower: 7.0,
            upper: 15.0,
        };
        assert_eq!(distance_beyond(15.0, fences), 0.0);
        assert_eq!(distance_beyond(7.0, fences), 0.0);
        assert_eq!(distance_beyond(15.5, fences), 0.5);
    }

    #[test]
    fn nulls_are_null_and_left_out() {
        // Non-NULL values 1 2 3 4: fences −0.5 and 5.5.
        let values = vec![Some(1.0), None, Some(2.0), Some(3.0), Some(4.0)];
        let scores = tukey_scores(&values, 1.5);
        assert_eq!(scores[1], None);
        assert_eq!(scores[0], Some(0.0));
        assert_eq!(tukey_scores(&[None, None], 1.5), vec![None, None]);
    }

    #[test]
    fn zero_iqr_still_scores() {
        // 5 5 5 5 9: Q1 = Q3 = 5, fences 5 and 5; 9 is 4 above.
        let values = vec![Some(5.0), Some(5.0), Some(9.0), Some(5.0), Some(5.0)];
        assert_eq!(
            tukey_scores(&values, 1.5),
            vec![Some(0.0), Some(0.0), Some(4.0), Some(0.0), Some(0.0)]
        );
    }
}
