//! `relative_index(count, population, total_count, total_population)`: a
//! unit's share of the count over its share of the population.

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{map_float64_rows, numeric_as_float64};

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Returns `(count / total_count) / (population / total_population)`, as Float64: \
the unit's share of the count divided by its share of the population (a location quotient). \
1 means the unit gets exactly its population share, 2 twice it, 0.5 half. \
Returns NULL when any argument is NULL or when any denominator (`population`, `total_count`, \
`total_population`) is not greater than 0. Arguments of any numeric type are cast to Float64. \
The totals are usually window sums, as in the example; for a location quotient of one \
category within each region use `SUM(...) OVER (PARTITION BY region)` for the totals.",
    syntax_example = "relative_index(count, population, total_count, total_population)",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT district,
         relative_index(quota, population,
                        SUM(quota) OVER (), SUM(population) OVER ()) AS lq
  FROM district_quota ORDER BY district;
+----------+--------------------+
| district | lq                 |
+----------+--------------------+
| A        | 1.2096774193548387 |
| B        | 0.7258064516129031 |
| C        | 0.9677419354838709 |
| D        | 0.967741935483871  |
| E        | 1.935483870967742  |
+----------+--------------------+
```"#,
    argument(
        name = "count",
        description = "Amount allocated to the unit, e.g. quota."
    ),
    argument(name = "population", description = "Population of the unit."),
    argument(
        name = "total_count",
        description = "Amount allocated to all units, e.g. `SUM(count) OVER ()`."
    ),
    argument(
        name = "total_population",
        description = "Population of all units, e.g. `SUM(population) OVER ()`."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RelativeIndexFunc {
    signature: Signature,
}

impl Default for RelativeIndexFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl RelativeIndexFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![numeric_as_float64(); 4], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RelativeIndexFunc {
    fn name(&self) -> &str {
        "relative_index"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_float64_rows(
            &args.args,
            args.number_rows,
            |[count, population, total_count, total_population]| {
                relative_index(count, population, total_count, total_population)
            },
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// `None` when a denominator is not positive (or NaN).
pub(crate) fn relative_index(
    count: f64,
    population: f64,
    total_count: f64,
    total_population: f64,
) -> Option<f64> {
    let denominators_positive = population > 0.0 && total_count > 0.0 && total_population > 0.0;
    denominators_positive.then(|| (count / total_count) / (population / total_population))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Float64Array};
    use arrow::datatypes::{Field, Float64Type};
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;

    use super::*;

    #[test]
    fn share_over_share() {
        // 25 of 100 quota for 20 of 100 people: 0.25 / 0.2.
        let index = relative_index(25.0, 20.0, 100.0, 100.0);
        assert!(index.is_some_and(|value| (value - 1.25).abs() < 1e-12));
        assert_eq!(relative_index(10.0, 10.0, 50.0, 50.0), Some(1.0));
        assert_eq!(relative_index(0.0, 10.0, 50.0, 50.0), Some(0.0));
    }

    #[test]
    fn non_positive_denominators_are_null() {
        assert_eq!(relative_index(1.0, 0.0, 10.0, 10.0), None);
        assert_eq!(relative_index(1.0, 5.0, 0.0, 10.0), None);
        assert_eq!(relative_index(1.0, 5.0, 10.0, -1.0), None);
        assert_eq!(relative_index(1.0, f64::NAN, 10.0, 10.0), None);
    }

    #[test]
    fn columns_with_literal_totals() -> Result<()> {
        let counts = Float64Array::from(vec![Some(25.0), Some(75.0), None]);
        let populations = Float64Array::from(vec![Some(20.0), Some(80.0), Some(1.0)]);
        let arguments = vec![
            ColumnarValue::Array(Arc::new(counts)),
            ColumnarValue::Array(Arc::new(populations)),
            ColumnarValue::Scalar(ScalarValue::Int64(Some(100))),
            ColumnarValue::Scalar(ScalarValue::Float64(Some(100.0))),
        ];
        let arg_fields = arguments
            .iter()
            .map(|argument| Arc::new(Field::new("argument", argument.data_type(), true)))
            .collect();
        let result = RelativeIndexFunc::new().invoke_with_args(ScalarFunctionArgs {
            args: arguments,
            arg_fields,
            number_rows: 3,
            return_field: Arc::new(Field::new("relative_index", DataType::Float64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        let ColumnarValue::Array(result) = result else {
            unreachable!("column arguments give a column");
        };
        let result = result.as_primitive::<Float64Type>();
        assert!((result.value(0) - 1.25).abs() < 1e-12);
        assert!((result.value(1) - 0.9375).abs() < 1e-12);
        assert!(result.is_null(2));
        Ok(())
    }
}
