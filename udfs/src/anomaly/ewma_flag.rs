//! `ewma_flag(x [, lambda, L, lookback])`: EWMA control chart signal, with
//! limits from a calibration period at the start of the partition.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::function::{
    ExpressionArgs, PartitionEvaluatorArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};
use datafusion::physical_expr::PhysicalExpr;
use datafusion_macros::user_doc;

use super::ewma::smoothing_weight;
use super::support::{
    constant_count, constant_float, integer_as_int64, nullable_field, series_expression, series_of,
    signature_with_optional,
};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "ewma_flag";

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Window function: the signal of an EWMA control chart (Roberts; Montgomery, \
*Introduction to Statistical Quality Control* §9.2), as Boolean — true when the exponentially \
weighted average leaves its control limits. Good at small persistent shifts that a per-row \
score misses.

**Calibration.** The first `lookback` rows of the ordered partition are the in-control \
reference: `μ` is the mean and `σ` the sample standard deviation (divisor `n − 1`) of their \
non-NULL values. These rows are not monitored and return NULL. The limits are fixed after that, \
so a lasting shift is not absorbed into its own baseline.

**Monitoring.** From the next row on, `z_0 = μ` and for the `t`-th non-NULL value \
`z_t = λ x_t + (1 − λ) z_{t−1}`; the result is `|z_t − μ| > L σ √(λ / (2 − λ) · (1 − (1 − λ)^{2t}))` \
— strictly outside; on the limit is false. (Unlike `ewma`, the average starts at `μ`, which is \
what the variance factor assumes.) `λ = 1` gives a Shewhart chart with ±`L σ` limits.

A NULL `x` returns NULL and leaves `z` and `t` unchanged. The whole partition is NULL when the \
calibration rows hold fewer than 2 non-NULL values or their `σ` is 0 (no spread, so no scale), \
and so is every row when the partition has no more rows than `lookback`. NaN and ±Infinity \
count as NULL. Give an `ORDER BY` (e.g. `ORDER BY month`); the window frame is ignored. \
`lambda` (0 < λ ≤ 1), `L` (> 0) and `lookback` (≥ 2) must be literals.",
    syntax_example = "ewma_flag(x [, lambda [, L [, lookback]]]) OVER (PARTITION BY series ORDER BY month)",
    sql_example = r#"```sql
-- unit_staff(unit, month, staff): unit 'A', months 1..7, staff
-- 48, 50, 52, 51, 53, 54, 55 (a slow drift after a 3-month calibration)
> SELECT month, staff, ewma_flag(staff, 0.5, 3, 3) OVER (PARTITION BY unit ORDER BY month) AS out
  FROM unit_staff ORDER BY month;
+-------+-------+-------+
| month | staff | out   |
+-------+-------+-------+
| 1     | 48    |       |
| 2     | 50    |       |
| 3     | 52    |       |
| 4     | 51    | false |
| 5     | 53    | false |
| 6     | 54    | false |
| 7     | 55    | true  |
+-------+-------+-------+
```"#,
    argument(name = "x", description = "The monitored series, any numeric type."),
    argument(
        name = "lambda",
        description = "Numeric literal in (0, 1]: weight of the newest value. Default 0.2."
    ),
    argument(
        name = "L",
        description = "Numeric literal > 0: width of the limits in standard deviations of the average. Default 3."
    ),
    argument(
        name = "lookback",
        description = "Integer literal ≥ 2: how many rows at the start of the partition calibrate μ and σ. Default 12."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EwmaFlagFunc {
    signature: Signature,
}

impl Default for EwmaFlagFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl EwmaFlagFunc {
    pub fn new() -> Self {
        Self {
            signature: signature_with_optional(
                vec![numeric_as_float64()],
                vec![
                    numeric_as_float64(),
                    numeric_as_float64(),
                    integer_as_int64(),
                ],
            ),
        }
    }
}

impl WindowUDFImpl for EwmaFlagFunc {
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
        let chart = EwmaChart::from_arguments(partition_evaluator_args.input_exprs())?;
        Ok(Box::new(EwmaFlagEvaluator { chart }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(nullable_field(&field_args, DataType::Boolean))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Settings of one EWMA chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EwmaChart {
    pub(crate) lambda: f64,
    /// `L`: half-width of the limits in standard deviations of `z_t`.
    pub(crate) limit_width: f64,
    /// Rows at the start of the partition that calibrate μ and σ.
    pub(crate) calibration_rows: usize,
}

impl EwmaChart {
    const DEFAULT_LIMIT_WIDTH: f64 = 3.0;
    const DEFAULT_CALIBRATION_ROWS: usize = 12;

    fn from_arguments(arguments: &[Arc<dyn PhysicalExpr>]) -> Result<Self> {
        let lambda = smoothing_weight(NAME, arguments, 1)?;
        let limit_width = constant_float(NAME, "L", arguments, 2, Self::DEFAULT_LIMIT_WIDTH)?;
        if limit_width <= 0.0 {
            return plan_err!("{NAME}: L must be greater than 0, got {limit_width}");
        }
        let calibration_rows = constant_count(
            NAME,
            "lookback",
            arguments,
            3,
            Self::DEFAULT_CALIBRATION_ROWS,
        )?;
        if calibration_rows < 2 {
            return plan_err!("{NAME}: lookback must be at least 2 (σ needs two values)");
        }
        Ok(Self {
            lambda,
            limit_width,
            calibration_rows,
        })
    }
}

#[derive(Debug)]
struct EwmaFlagEvaluator {
    chart: EwmaChart,
}

impl PartitionEvaluator for EwmaFlagEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let series = series_of(NAME, values)?;
        Ok(Arc::new(BooleanArray::from(ewma_flags(
            &series, self.chart,
        ))))
    }
}

/// Mean and sample standard deviation; `None` with fewer than 2 values.
fn mean_and_standard_deviation(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 2 {
        return None;
    }
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    Some((mean, (squares / (count - 1.0)).sqrt()))
}

/// The chart's signal for every row: NULL for calibration rows, NULL rows
/// and partitions without a usable calibration.
pub(crate) fn ewma_flags(series: &[Option<f64>], chart: EwmaChart) -> Vec<Option<bool>> {
    let calibration_rows = chart.calibration_rows.min(series.len());
    let (calibration, monitored) = series.split_at(calibration_rows);
    let calibration: Vec<f64> = calibration.iter().flatten().copied().collect();
    let usable = mean_and_standard_deviation(&calibration)
        .filter(|(_, standard_deviation)| *standard_deviation > 0.0);
    let Some((mean, standard_deviation)) = usable else {
        return vec![None; series.len()];
    };
    let lambda = chart.lambda;
    let keep = (1.0 - lambda).powi(2);
    // (1 − λ)^{2t}, updated once per monitored value.
    let mut decay = 1.0;
    let mut average = mean;
    let flags = monitored.iter().map(|value| {
        let value = (*value)?;
        average = lambda * value + (1.0 - lambda) * average;
        decay *= keep;
        let variance_factor = lambda / (2.0 - lambda) * (1.0 - decay);
        let half_width = chart.limit_width * standard_deviation * variance_factor.sqrt();
        Some((average - mean).abs() > half_width)
    });
    std::iter::repeat_n(None, calibration_rows)
        .chain(flags)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(lambda: f64, limit_width: f64, calibration_rows: usize) -> EwmaChart {
        EwmaChart {
            lambda,
            limit_width,
            calibration_rows,
        }
    }

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
    }

    #[test]
    fn shewhart_limits_are_strict() {
        // Calibration 8 10 12: μ = 10, σ² = (4 + 0 + 4) / 2 = 4, σ = 2. With
        // λ = 1 the average is x and the limits are μ ± 1.5 · 2 = 7 .. 13.
        let series = some(&[8.0, 10.0, 12.0, 13.0, 13.5, 7.0, 6.5]);
        let flags = ewma_flags(&series, chart(1.0, 1.5, 3));
        assert_eq!(
            flags,
            vec![
                None,
                None,
                None,
                Some(false),
                Some(true),
                Some(false),
                Some(true)
            ]
        );
    }

    #[test]
    fn known_answer_with_time_varying_limits() {
        // Calibration 10 12 8 10: μ = 10, σ² = (0 + 4 + 4 + 0) / 3, σ = √(8/3).
        // λ = 0.5, L = 3; factor(t) = (0.5 / 1.5)(1 − 0.25^t).
        // t = 1: x 14 → z = 12; limit 3σ√(0.25) = 2.449… > 2 → false.
        // t = 2: x 16 → z = 14; limit 3σ√(0.3125) = 2.738… < 4 → true.
        let sigma = (8.0f64 / 3.0).sqrt();
        assert!(3.0 * sigma * 0.25f64.sqrt() > 2.0);
        assert!(3.0 * sigma * 0.3125f64.sqrt() < 4.0);
        let series = some(&[10.0, 12.0, 8.0, 10.0, 14.0, 16.0]);
        let flags = ewma_flags(&series, chart(0.5, 3.0, 4));
        assert_eq!(&flags[4..], &[Some(false), Some(true)]);
    }

    #[test]
    fn small_drift_is_caught_by_the_average() {
        // Calibration 48 50 52: μ = 50, σ = 2. λ = 0.5, L = 3, so the limit
        // is 6 √((1/3)(1 − 0.25^t)):
        // 51 → z 50.5, limit 6·√0.25 = 3 → false;
        // 53 → z 51.75, limit 6·√0.3125 = 3.354 → false;
        // 54 → z 52.875, limit 6·√0.328125 = 3.437 → false;
        // 56 → z 54.4375, limit 6·√0.33203125 = 3.457 → true.
        // A 3σ Shewhart chart (λ = 1: limits 44 .. 56, strict) flags none.
        let series = some(&[48.0, 50.0, 52.0, 51.0, 53.0, 54.0, 56.0]);
        let flags = ewma_flags(&series, chart(0.5, 3.0, 3));
        assert_eq!(
            &flags[3..],
            &[Some(false), Some(false), Some(false), Some(true)]
        );
        let shewhart = ewma_flags(&series, chart(1.0, 3.0, 3));
        assert_eq!(&shewhart[3..], &[Some(false); 4]);
    }

    #[test]
    fn nulls_keep_the_chart_state() {
        // The drift above with NULLs among the calibration and monitored rows:
        // non-NULL rows get the same signals, NULL rows get NULL.
        let series = vec![
            Some(48.0),
            None,
            Some(50.0),
            Some(52.0),
            Some(51.0),
            None,
            Some(53.0),
            Some(54.0),
            None,
            Some(56.0),
        ];
        let flags = ewma_flags(&series, chart(0.5, 3.0, 4));
        assert_eq!(
            flags,
            vec![
                None,
                None,
                None,
                None,
                Some(false),
                None,
                Some(false),
                Some(false),
                None,
                Some(true)
            ]
        );
    }

    #[test]
    fn unusable_calibration_gives_null() {
        // One value only, or no spread, or a partition inside the calibration.
        let one = vec![Some(5.0), None, None, Some(9.0)];
        assert!(ewma_flags(&one, chart(0.2, 3.0, 3))
            .iter()
            .all(Option::is_none));
        let flat = some(&[5.0, 5.0, 5.0, 9.0]);
        assert!(ewma_flags(&flat, chart(0.2, 3.0, 3))
            .iter()
            .all(Option::is_none));
        let short = some(&[1.0, 2.0]);
        assert_eq!(ewma_flags(&short, chart(0.2, 3.0, 3)), vec![None, None]);
    }
}
