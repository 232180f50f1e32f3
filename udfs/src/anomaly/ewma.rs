//! `ewma(x [, lambda])`: exponentially weighted moving average of the
//! ordered partition.

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
    constant_float, nullable_field, series_expression, series_of, signature_with_optional,
};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "ewma";

/// Weight of the newest value when the call does not give one.
pub(crate) const DEFAULT_LAMBDA: f64 = 0.2;

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Window function: the exponentially weighted moving average \
`z_t = λ x_t + (1 − λ) z_{t−1}` of the ordered partition, as Float64, starting at \
`z_0 = ` the first non-NULL `x` (so the first non-NULL row returns `x` itself). A larger `λ` \
follows the data faster; `λ = 1` returns `x`.

A NULL `x` returns NULL and leaves the average unchanged: the next non-NULL row continues from \
the last average, as if the NULL row were not there. Rows before the first non-NULL value are \
NULL. NaN and ±Infinity count as NULL. Give an `ORDER BY` (e.g. `ORDER BY month`); the window \
frame is ignored. `lambda` must be a numeric literal with `0 < lambda ≤ 1`. For control limits \
see `ewma_flag`, whose average starts at the calibration mean instead.",
    syntax_example = "ewma(x [, lambda]) OVER (PARTITION BY series ORDER BY month)",
    sql_example = r#"```sql
-- unit_staff(unit, month, staff): unit 'A', months 1..4, staff 50, NULL, 60, 40
> SELECT month, staff, ewma(staff, 0.5) OVER (PARTITION BY unit ORDER BY month) AS smooth
  FROM unit_staff ORDER BY month;
+-------+-------+--------+
| month | staff | smooth |
+-------+-------+--------+
| 1     | 50    | 50.0   |
| 2     |       |        |
| 3     | 60    | 55.0   |
| 4     | 40    | 47.5   |
+-------+-------+--------+
```"#,
    argument(name = "x", description = "The series to smooth, any numeric type."),
    argument(
        name = "lambda",
        description = "Numeric literal in (0, 1]: weight of the newest value. Default 0.2."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EwmaFunc {
    signature: Signature,
}

impl Default for EwmaFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl EwmaFunc {
    pub fn new() -> Self {
        Self {
            signature: signature_with_optional(
                vec![numeric_as_float64()],
                vec![numeric_as_float64()],
            ),
        }
    }
}

impl WindowUDFImpl for EwmaFunc {
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
        let lambda = smoothing_weight(NAME, partition_evaluator_args.input_exprs(), 1)?;
        Ok(Box::new(EwmaEvaluator { lambda }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(nullable_field(&field_args, DataType::Float64))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The constant `lambda` argument at `index`: a number in (0, 1].
pub(crate) fn smoothing_weight(
    function: &str,
    arguments: &[Arc<dyn PhysicalExpr>],
    index: usize,
) -> Result<f64> {
    let lambda = constant_float(function, "lambda", arguments, index, DEFAULT_LAMBDA)?;
    if lambda > 0.0 && lambda <= 1.0 {
        Ok(lambda)
    } else {
        plan_err!("{function}: lambda must be in (0, 1], got {lambda}")
    }
}

#[derive(Debug)]
struct EwmaEvaluator {
    lambda: f64,
}

impl PartitionEvaluator for EwmaEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let series = series_of(NAME, values)?;
        Ok(Arc::new(Float64Array::from(ewma_series(
            &series,
            self.lambda,
        ))))
    }
}

/// The average after each row; NULL rows are skipped and return NULL.
pub(crate) fn ewma_series(series: &[Option<f64>], lambda: f64) -> Vec<Option<f64>> {
    let mut average: Option<f64> = None;
    series
        .iter()
        .map(|value| {
            let value = (*value)?;
            let next = match average {
                None => value,
                Some(previous) => lambda * value + (1.0 - lambda) * previous,
            };
            average = Some(next);
            average
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{col, lit};

    use super::*;

    #[test]
    fn known_answers() {
        // λ = 0.5: z = 50, then 0.5·60 + 0.5·50 = 55, then 0.5·40 + 0.5·55 = 47.5.
        let series = vec![Some(50.0), Some(60.0), Some(40.0)];
        assert_eq!(
            ewma_series(&series, 0.5),
            vec![Some(50.0), Some(55.0), Some(47.5)]
        );
        // λ = 0.2 (the default): 10, then 0.2·20 + 0.8·10 = 12, then
        // 0.2·20 + 0.8·12 = 13.6.
        let series = vec![Some(10.0), Some(20.0), Some(20.0)];
        let averages = ewma_series(&series, DEFAULT_LAMBDA);
        for (actual, expected) in averages.iter().zip([10.0, 12.0, 13.6]) {
            assert!((actual.unwrap_or(f64::NAN) - expected).abs() < 1e-12);
        }
        // λ = 1 follows the data exactly.
        assert_eq!(ewma_series(&series, 1.0), series);
    }

    #[test]
    fn nulls_return_null_and_keep_the_average() {
        // Leading NULL: nothing yet. The NULL in the middle is skipped:
        // 50, (NULL), 0.5·60 + 0.5·50 = 55.
        let series = vec![None, Some(50.0), None, Some(60.0)];
        assert_eq!(
            ewma_series(&series, 0.5),
            vec![None, Some(50.0), None, Some(55.0)]
        );
        assert_eq!(ewma_series(&[None, None], 0.5), vec![None, None]);
    }

    #[test]
    fn lambda_must_be_a_weight() -> Result<()> {
        let schema = arrow::datatypes::Schema::new(vec![Field::new("x", DataType::Float64, true)]);
        let series = col("x", &schema)?;
        assert_eq!(smoothing_weight(NAME, &[Arc::clone(&series)], 1)?, 0.2);
        for bad in [0.0, -0.5, 1.5] {
            let arguments = [Arc::clone(&series), lit(ScalarValue::Float64(Some(bad)))];
            let error = smoothing_weight(NAME, &arguments, 1);
            assert!(error.is_err_and(|error| error.to_string().contains("ewma: lambda")));
        }
        Ok(())
    }
}
