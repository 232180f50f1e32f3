//! `per_10k(count, population)`: a count per 10,000 people (万人比).

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{map_float64_rows, numeric_as_float64};

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns `count * 10000 / population`: the count per 10,000 people, as Float64. \
Returns NULL when either argument is NULL or when `population` is not greater than 0 \
(0, negative or NaN). The count itself may be any number, including 0 or negative. \
Arguments of any numeric type (integers, decimals, floats) are cast to Float64.",
    syntax_example = "per_10k(count, population)",
    sql_example = r#"```sql
> SELECT per_10k(50, 1000000);
+-----------------------------------+
| per_10k(Int64(50),Int64(1000000)) |
+-----------------------------------+
| 0.5                               |
+-----------------------------------+
```"#,
    argument(
        name = "count",
        description = "Amount being rated, e.g. approved staffing quota (编制数) of a unit."
    ),
    argument(
        name = "population",
        description = "Population served by the unit; NULL result unless greater than 0."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PerTenThousandFunc {
    signature: Signature,
}

impl Default for PerTenThousandFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl PerTenThousandFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![numeric_as_float64(), numeric_as_float64()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for PerTenThousandFunc {
    fn name(&self) -> &str {
        "per_10k"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_float64_rows(&args.args, args.number_rows, |[count, population]| {
            per_ten_thousand(count, population)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// `None` when the population cannot be a divisor (≤ 0 or NaN).
pub(crate) fn per_ten_thousand(count: f64, population: f64) -> Option<f64> {
    (population > 0.0).then(|| count * 10_000.0 / population)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Float64Array, Int64Array};
    use arrow::datatypes::{Field, Float64Type};
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;

    use super::*;

    fn invoke(arguments: Vec<ColumnarValue>, number_rows: usize) -> Result<ColumnarValue> {
        let arg_fields = arguments
            .iter()
            .map(|argument| Arc::new(Field::new("argument", argument.data_type(), true)))
            .collect();
        PerTenThousandFunc::new().invoke_with_args(ScalarFunctionArgs {
            args: arguments,
            arg_fields,
            number_rows,
            return_field: Arc::new(Field::new("per_10k", DataType::Float64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn rate_per_ten_thousand() {
        assert_eq!(per_ten_thousand(50.0, 1_000_000.0), Some(0.5));
        assert_eq!(per_ten_thousand(3.0, 30_000.0), Some(1.0));
        assert_eq!(per_ten_thousand(0.0, 10.0), Some(0.0));
    }

    #[test]
    fn population_not_positive_is_null() {
        assert_eq!(per_ten_thousand(5.0, 0.0), None);
        assert_eq!(per_ten_thousand(5.0, -100.0), None);
        assert_eq!(per_ten_thousand(5.0, f64::NAN), None);
    }

    #[test]
    fn column_against_literal_propagates_nulls() -> Result<()> {
        let counts = Float64Array::from(vec![Some(10.0), None, Some(7.0), Some(1.0)]);
        let result = invoke(
            vec![
                ColumnarValue::Array(Arc::new(counts)),
                ColumnarValue::Scalar(ScalarValue::Float64(Some(20_000.0))),
            ],
            4,
        )?;
        let ColumnarValue::Array(result) = result else {
            unreachable!("a column argument gives a column");
        };
        let result = result.as_primitive::<Float64Type>();
        assert_eq!(result.value(0), 5.0);
        assert!(result.is_null(1));
        assert_eq!(result.value(2), 3.5);
        assert_eq!(result.value(3), 0.5);
        Ok(())
    }

    #[test]
    fn integer_columns_are_cast() -> Result<()> {
        let counts = Int64Array::from(vec![Some(3), Some(1)]);
        let populations = Int64Array::from(vec![Some(10_000), Some(0)]);
        let result = invoke(
            vec![
                ColumnarValue::Array(Arc::new(counts)),
                ColumnarValue::Array(Arc::new(populations)),
            ],
            2,
        )?;
        let ColumnarValue::Array(result) = result else {
            unreachable!("column arguments give a column");
        };
        let result = result.as_primitive::<Float64Type>();
        assert_eq!(result.value(0), 3.0);
        assert!(result.is_null(1));
        Ok(())
    }

    #[test]
    fn literals_give_a_literal() -> Result<()> {
        let result = invoke(
            vec![
                ColumnarValue::Scalar(ScalarValue::Int64(Some(50))),
                ColumnarValue::Scalar(ScalarValue::Null),
            ],
            1,
        )?;
        let ColumnarValue::Scalar(result) = result else {
            unreachable!("literal arguments give a literal");
        };
        assert_eq!(result, ScalarValue::Float64(None));
        Ok(())
    }
}
