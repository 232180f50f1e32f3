//! `trgm_match(a, b [, threshold])`: pg_trgm's `a % b` with an explicit
//! threshold.

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::{internal_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion_macros::user_doc;

use super::similarity::similarity;
use super::support::{evaluate, float64_argument, string_argument, string_pair, Float64Operand};

/// pg_trgm's default `pg_trgm.similarity_threshold`.
const DEFAULT_THRESHOLD: f64 = 0.3;

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns whether `similarity(a, b) >= threshold`, as Boolean: PostgreSQL \
pg_trgm's `a % b` operator, with the threshold passed instead of read from the \
`pg_trgm.similarity_threshold` setting. The threshold defaults to 0.3, pg_trgm's default, and \
is compared as given (a threshold above 1 matches nothing, one of 0 or below everything). NULL \
in any argument gives NULL.",
    syntax_example = "trgm_match(a, b [, threshold])",
    sql_example = r#"```sql
> SELECT trgm_match('PostgreSQL', 'postgres') AS by_default, trgm_match('PostgreSQL', 'postgres', 0.7) AS strict;
+------------+--------+
| by_default | strict |
+------------+--------+
| true       | false  |
+------------+--------+
```"#,
    argument(name = "a", description = "First text."),
    argument(name = "b", description = "Second text."),
    argument(
        name = "threshold",
        description = "Least similarity that matches; default 0.3."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrgmMatchFunc {
    signature: Signature,
}

impl Default for TrgmMatchFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl TrgmMatchFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![string_argument(), string_argument()]),
                    TypeSignature::Coercible(vec![
                        string_argument(),
                        string_argument(),
                        float64_argument(),
                    ]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for TrgmMatchFunc {
    fn name(&self) -> &str {
        "trgm_match"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (left, right) = string_pair("trgm_match", &args.args)?;
        let threshold = match args.args.get(2) {
            Some(threshold) => Float64Operand::from_columnar(threshold)?,
            None if args.args.len() == 2 => Float64Operand::Literal(Some(DEFAULT_THRESHOLD)),
            None => {
                return internal_err!(
                    "trgm_match: expected 2 or 3 arguments, got {}",
                    args.args.len()
                )
            }
        };
        evaluate(&args.args, args.number_rows, |rows| {
            let similarities = similarity(&left, &right, rows);
            let matches: BooleanArray = similarities
                .iter()
                .enumerate()
                .map(|(row, similarity)| Some(f64::from(similarity?) >= threshold.get(row)?))
                .collect();
            Ok(Arc::new(matches))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, Float64Array, StringArray};
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;

    use super::*;
    use crate::text::similarity::tests::PG_SIMILARITY;

    fn invoke(arguments: Vec<ColumnarValue>, number_rows: usize) -> Result<ColumnarValue> {
        let arg_fields = arguments
            .iter()
            .map(|argument| Arc::new(Field::new("argument", argument.data_type(), true)))
            .collect();
        TrgmMatchFunc::new().invoke_with_args(ScalarFunctionArgs {
            args: arguments,
            arg_fields,
            number_rows,
            return_field: Arc::new(Field::new("trgm_match", DataType::Boolean, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    /// `a % b` from PostgreSQL 15.18 with the default threshold 0.3
    /// (tests/pg_trgm_reference.sql): true exactly where similarity ≥ 0.3.
    #[test]
    fn default_threshold_as_postgres_operator() -> Result<()> {
        let left: StringArray = PG_SIMILARITY.iter().map(|row| Some(row.0)).collect();
        let right: StringArray = PG_SIMILARITY.iter().map(|row| Some(row.1)).collect();
        let result = invoke(
            vec![
                ColumnarValue::Array(Arc::new(left)),
                ColumnarValue::Array(Arc::new(right)),
            ],
            PG_SIMILARITY.len(),
        )?;
        let ColumnarValue::Array(result) = result else {
            unreachable!("column arguments give a column");
        };
        let result = result.as_boolean();
        let postgres_matches = [
            true, true, true, false, true, false, false, true, true, true, true, true, false, true,
            true, false, true, true,
        ];
        for (row, expected) in postgres_matches.iter().enumerate() {
            assert_eq!(result.value(row), *expected, "{:?}", PG_SIMILARITY[row]);
        }
        Ok(())
    }

    #[test]
    fn threshold_column_and_nulls() -> Result<()> {
        let thresholds = Float64Array::from(vec![Some(0.6), Some(0.7), None]);
        let result = invoke(
            vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("PostgreSQL".to_string()))),
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("postgres".to_string()))),
                ColumnarValue::Array(Arc::new(thresholds)),
            ],
            3,
        )?;
        let ColumnarValue::Array(result) = result else {
            unreachable!("a column argument gives a column");
        };
        let result = result.as_boolean();
        assert!(result.value(0));
        assert!(!result.value(1));
        assert!(result.is_null(2));
        Ok(())
    }
}
