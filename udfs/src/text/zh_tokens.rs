//! `zh_tokens(text [, mode])`: the tokens the similarity functions compare.

use std::sync::Arc;

use arrow::array::{ListArray, ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;

use super::normalize::{NormalizedText, TokenMode};
use super::support::{evaluate, string_argument, utf8_list_type, StringOperand};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns the tokens of a Chinese text as a list of strings, in text order \
with repeats. The text is first normalised as by `zh_normalize`; tokens never span a place \
where punctuation or whitespace was removed. Modes: `'bigram'` (the default) gives the \
character bigrams of each run of kept characters, a one-character run giving that character; \
`'word'` gives the jieba word segmentation (default dictionary, HMM for unknown words) of each \
run; `'both'` gives the bigrams followed by the words. Mode names are case-insensitive. A \
literal unknown mode is an error at planning time, an unknown mode from a column an error when \
the row is evaluated. NULL text or mode gives NULL; a text without letters, Han characters or \
digits gives an empty list.",
    syntax_example = "zh_tokens(text [, mode])",
    sql_example = r#"```sql
> SELECT zh_tokens('負責全市交通，市'), zh_tokens('负责全市道路交通', 'word');
+-------------------------------------+--------------------------------------------------+
| zh_tokens(Utf8("負責全市交通，市")) | zh_tokens(Utf8("负责全市道路交通"),Utf8("word")) |
+-------------------------------------+--------------------------------------------------+
| [负责, 责全, 全市, 市交, 交通, 市]  | [负责, 全市, 道路交通]                           |
+-------------------------------------+--------------------------------------------------+
```"#,
    argument(name = "text", description = "Text to tokenise."),
    argument(
        name = "mode",
        description = "`'bigram'` (default), `'word'` or `'both'`."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ZhTokensFunc {
    signature: Signature,
}

impl Default for ZhTokensFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ZhTokensFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![string_argument()]),
                    TypeSignature::Coercible(vec![string_argument(), string_argument()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for ZhTokensFunc {
    fn name(&self) -> &str {
        "zh_tokens"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(utf8_list_type())
    }

    /// Checks a literal mode while planning.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(Some(ScalarValue::Utf8(Some(mode))))
        | Some(Some(ScalarValue::LargeUtf8(Some(mode))))
        | Some(Some(ScalarValue::Utf8View(Some(mode)))) = args.scalar_arguments.get(1)
        {
            if TokenMode::parse(mode).is_none() {
                return plan_err!(
                    "zh_tokens: unknown mode '{mode}'; valid modes are {}",
                    TokenMode::NAMES
                );
            }
        }
        Ok(Arc::new(Field::new(self.name(), utf8_list_type(), true)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (text, mode) = match args.args.as_slice() {
            [text] => (
                StringOperand::from_columnar(text)?,
                StringOperand::Literal(Some("bigram".to_string())),
            ),
            [text, mode] => (
                StringOperand::from_columnar(text)?,
                StringOperand::from_columnar(mode)?,
            ),
            other => {
                return internal_err!("zh_tokens: expected 1 or 2 arguments, got {}", other.len())
            }
        };
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(zh_tokens(&text, &mode, rows)?))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The tokens of every row; NULL text or mode gives NULL.
pub(crate) fn zh_tokens(
    text: &StringOperand,
    mode: &StringOperand,
    number_rows: usize,
) -> Result<ListArray> {
    let literal_mode = match mode.literal() {
        Some(Some(mode)) => Some(parse_mode(mode)?),
        _ => None,
    };
    let mut builder = ListBuilder::new(StringBuilder::new());
    for row in 0..number_rows {
        let mode = match literal_mode {
            Some(mode) => Some(mode),
            None => mode.get(row).map(parse_mode).transpose()?,
        };
        let (Some(text), Some(mode)) = (text.get(row), mode) else {
            builder.append_null();
            continue;
        };
        let normalized = NormalizedText::new(text);
        let tokens = builder.values();
        if matches!(mode, TokenMode::Bigram | TokenMode::Both) {
            normalized
                .bigrams()
                .for_each(|bigram| tokens.append_value(bigram));
        }
        if matches!(mode, TokenMode::Word | TokenMode::Both) {
            normalized
                .words()
                .for_each(|word| tokens.append_value(word));
        }
        builder.append(true);
    }
    Ok(builder.finish())
}

fn parse_mode(mode: &str) -> Result<TokenMode> {
    match TokenMode::parse(mode) {
        Some(mode) => Ok(mode),
        None => exec_err!(
            "zh_tokens: unknown mode '{mode}'; valid modes are {}",
            TokenMode::NAMES
        ),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, StringArray};

    use super::*;

    fn row_tokens(list: &ListArray, row: usize) -> Vec<String> {
        let values = list.value(row);
        values
            .as_string::<i32>()
            .iter()
            .map(|token| token.unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn bigrams_by_default_and_single_characters() -> Result<()> {
        let texts = StringOperand::Utf8(StringArray::from(vec![
            Some("負責全市交通，市"),
            Some("市"),
            None,
            Some("。"),
        ]));
        let mode = StringOperand::Literal(Some("bigram".to_string()));
        let list = zh_tokens(&texts, &mode, 4)?;
        assert_eq!(
            row_tokens(&list, 0),
            ["负责", "责全", "全市", "市交", "交通", "市"]
        );
        assert_eq!(row_tokens(&list, 1), ["市"]);
        assert!(list.is_null(2));
        assert!(list.is_valid(3));
        assert!(row_tokens(&list, 3).is_empty());
        Ok(())
    }

    #[test]
    fn words_and_both() -> Result<()> {
        let texts = StringOperand::Literal(Some("负责全市道路交通。".to_string()));
        let modes = StringOperand::Utf8(StringArray::from(vec![Some("word"), Some("BOTH"), None]));
        let list = zh_tokens(&texts, &modes, 3)?;
        let words = row_tokens(&list, 0);
        assert_eq!(words.concat(), "负责全市道路交通");
        let both = row_tokens(&list, 1);
        assert_eq!(both.len(), 7 + words.len());
        assert_eq!(both[7..], words[..]);
        assert!(list.is_null(2));
        Ok(())
    }

    #[test]
    fn unknown_mode_in_a_row_is_an_error_naming_it() {
        let texts = StringOperand::Literal(Some("交通".to_string()));
        let modes = StringOperand::Utf8(StringArray::from(vec![Some("trigram")]));
        let Err(error) = zh_tokens(&texts, &modes, 1) else {
            panic!("an unknown mode should fail");
        };
        let message = error.to_string();
        assert!(
            message.contains("trigram") && message.contains("'bigram'"),
            "{message}"
        );
    }
}
