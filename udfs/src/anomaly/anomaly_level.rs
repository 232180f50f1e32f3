//! `anomaly_level(score, warn, alert)`: 'normal', 'warn' or 'alert' by the
//! size of a score.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::DataType;
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::allocation::support::{numeric_as_float64, Float64Operand};

const NAME: &str = "anomaly_level";

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Classifies a score by its size, as Utf8: `'alert'` when `|score| ≥ alert`, \
else `'warn'` when `|score| ≥ warn`, else `'normal'`. Both boundaries are **inclusive**: a score \
exactly at a threshold takes that level. The sign is ignored, so negative scores (a drop) \
classify like positive ones.

NULL when any argument is NULL or NaN, and when the thresholds are not `0 ≤ warn ≤ alert` (a \
per-row problem, so NULL rather than an error). ±Infinity is `'alert'`. Arguments of any numeric \
type; the thresholds may be columns (e.g. per sector).",
    syntax_example = "anomaly_level(score, warn, alert)",
    sql_example = r#"```sql
> SELECT anomaly_level(-3.5, 2, 3.5) AS a, anomaly_level(2.1, 2, 3.5) AS b,
         anomaly_level(0.4, 2, 3.5) AS c;
+-------+------+--------+
| a     | b    | c      |
+-------+------+--------+
| alert | warn | normal |
+-------+------+--------+
```"#,
    argument(
        name = "score",
        description = "A score such as `robust_z(...)`; only its absolute value counts."
    ),
    argument(name = "warn", description = "Smallest |score| that is 'warn', ≥ 0."),
    argument(
        name = "alert",
        description = "Smallest |score| that is 'alert', ≥ warn (3.5 is the usual modified z-score rule)."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AnomalyLevelFunc {
    signature: Signature,
}

impl Default for AnomalyLevelFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl AnomalyLevelFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![
                    numeric_as_float64(),
                    numeric_as_float64(),
                    numeric_as_float64(),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for AnomalyLevelFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [score, warn, alert] = args.args.as_slice() else {
            return internal_err!("{NAME}: expected 3 arguments, got {}", args.args.len());
        };
        let score = Float64Operand::from_columnar(score)?;
        let warn = Float64Operand::from_columnar(warn)?;
        let alert = Float64Operand::from_columnar(alert)?;
        let level_of_row =
            |row: usize| anomaly_level(score.get(row)?, warn.get(row)?, alert.get(row)?);
        let all_literals = [&score, &warn, &alert]
            .iter()
            .all(|operand| matches!(operand, Float64Operand::Literal(_)));
        if all_literals {
            let level = level_of_row(0).map(str::to_string);
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(level)));
        }
        let levels: StringArray = (0..args.number_rows).map(level_of_row).collect();
        Ok(ColumnarValue::Array(Arc::new(levels)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The level of one score; `None` for NaN or thresholds not `0 ≤ warn ≤ alert`.
pub(crate) fn anomaly_level(score: f64, warn: f64, alert: f64) -> Option<&'static str> {
    if score.is_nan() || warn.is_nan() || alert.is_nan() || warn < 0.0 || alert < warn {
        return None;
    }
    let size = score.abs();
    Some(if size >= alert {
        "alert"
    } else if size >= warn {
        "warn"
    } else {
        "normal"
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, Float64Array};
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;

    use super::*;

    fn invoke(arguments: Vec<ColumnarValue>, number_rows: usize) -> Result<ColumnarValue> {
        let arg_fields = arguments
            .iter()
            .map(|argument| Arc::new(Field::new("argument", argument.data_type(), true)))
            .collect();
        AnomalyLevelFunc::new().invoke_with_args(ScalarFunctionArgs {
            args: arguments,
            arg_fields,
            number_rows,
            return_field: Arc::new(Field::new(NAME, DataType::Utf8, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn boundaries_are_inclusive() {
        assert_eq!(anomaly_level(3.5, 2.0, 3.5), Some("alert"));
        assert_eq!(anomaly_level(-3.5, 2.0, 3.5), Some("alert"));
        assert_eq!(anomaly_level(3.49, 2.0, 3.5), Some("warn"));
        assert_eq!(anomaly_level(-2.0, 2.0, 3.5), Some("warn"));
        assert_eq!(anomaly_level(1.99, 2.0, 3.5), Some("normal"));
        assert_eq!(anomaly_level(0.0, 0.0, 0.0), Some("alert"));
        assert_eq!(anomaly_level(f64::NEG_INFINITY, 2.0, 3.5), Some("alert"));
    }

    #[test]
    fn bad_thresholds_and_nan_are_null() {
        assert_eq!(anomaly_level(f64::NAN, 2.0, 3.5), None);
        assert_eq!(anomaly_level(1.0, 3.5, 2.0), None);
        assert_eq!(anomaly_level(1.0, -1.0, 2.0), None);
        assert_eq!(anomaly_level(1.0, 2.0, f64::NAN), None);
    }

    #[test]
    fn column_with_literal_thresholds() -> Result<()> {
        let scores = Float64Array::from(vec![Some(0.5), None, Some(-4.0), Some(2.5)]);
        let result = invoke(
            vec![
                ColumnarValue::Array(Arc::new(scores)),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(2))),
                ColumnarValue::Scalar(ScalarValue::Float64(Some(3.5))),
            ],
            4,
        )?;
        let ColumnarValue::Array(result) = result else {
            unreachable!("a column argument gives a column");
        };
        let result = result.as_string::<i32>();
        assert_eq!(result.value(0), "normal");
        assert!(result.is_null(1));
        assert_eq!(result.value(2), "alert");
        assert_eq!(result.value(3), "warn");
        Ok(())
    }

    #[test]
    fn literals_give_a_literal() -> Result<()> {
        let result = invoke(
            vec![
                ColumnarValue::Scalar(ScalarValue::Float64(Some(2.0))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(2))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(3))),
            ],
            1,
        )?;
        let ColumnarValue::Scalar(result) = result else {
            unreachable!("literal arguments give a literal");
        };
        assert_eq!(result, ScalarValue::Utf8(Some("warn".to_string())));
        let null = invoke(
            vec![
                ColumnarValue::Scalar(ScalarValue::Null),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(2))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(3))),
            ],
            1,
        )?;
        let ColumnarValue::Scalar(null) = null else {
            unreachable!("literal arguments give a literal");
        };
        assert_eq!(null, ScalarValue::Utf8(None));
        Ok(())
    }
}
