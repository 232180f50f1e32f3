//! `zh_normalize(text)`: the canonical form two duty texts are compared in.

use std::sync::Arc;

use arrow::array::{StringArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{internal_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::normalize::NormalizedText;
use super::support::{evaluate, string_argument, StringOperand};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns the normalised form of a Chinese text, as Utf8: Unicode NFKC \
(full-width letters, digits and punctuation become ASCII), Traditional characters converted \
to Simplified, letters lowercased, and every character that is not a letter, Han character \
or digit removed — punctuation, symbols and all whitespace (whitespace carries no meaning in \
Chinese text, so it is dropped, not folded). 負責全市道路交通安全管理工作 and \
负责全市道路交通安全管理工作 normalise to the same string. A text of punctuation only gives \
the empty string; NULL gives NULL.",
    syntax_example = "zh_normalize(text)",
    sql_example = r#"```sql
> SELECT zh_normalize('負責全市（道路）交通　安全，ＡＢＣ');
+----------------------------------------------------------+
| zh_normalize(Utf8("負責全市（道路）交通　安全，ＡＢＣ")) |
+----------------------------------------------------------+
| 负责全市道路交通安全abc                                  |
+----------------------------------------------------------+
```"#,
    argument(
        name = "text",
        description = "Text to normalise, e.g. a duty clause (职责条款)."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ZhNormalizeFunc {
    signature: Signature,
}

impl Default for ZhNormalizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ZhNormalizeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string_argument()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ZhNormalizeFunc {
    fn name(&self) -> &str {
        "zh_normalize"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = args.args.as_slice() else {
            return internal_err!(
                "zh_normalize: expected one argument, got {}",
                args.args.len()
            );
        };
        let text = StringOperand::from_columnar(text)?;
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(zh_normalize(&text, rows)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The normalised text of every row; NULL stays NULL.
pub(crate) fn zh_normalize(text: &StringOperand, number_rows: usize) -> StringArray {
    let mut builder = StringBuilder::with_capacity(number_rows, 0);
    for row in 0..number_rows {
        match text.get(row) {
            Some(value) => builder.append_value(NormalizedText::new(value).as_str()),
            None => builder.append_null(),
        }
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;

    use super::*;

    #[test]
    fn rows_are_normalised_and_nulls_kept() {
        let texts = StringOperand::Utf8(StringArray::from(vec![
            Some("負責全市道路交通安全管理工作"),
            None,
            Some("负责全市道路交通安全管理工作。"),
            Some("、；"),
        ]));
        let result = zh_normalize(&texts, 4);
        assert_eq!(result.value(0), "负责全市道路交通安全管理工作");
        assert!(result.is_null(1));
        assert_eq!(result.value(2), result.value(0));
        assert_eq!(result.value(3), "");
    }
}
