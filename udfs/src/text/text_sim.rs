//! `text_sim(a, b, method)`: set similarity of the tokens of two Chinese texts.

use std::sync::Arc;

use arrow::array::Float64Array;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use super::normalize::{shared_count, NormalizedText};
use super::support::{evaluate, map_string_pairs_once_per_text, string_argument, StringOperand};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns the similarity of two Chinese texts in [0, 1], as Float64, comparing \
the sets of their tokens (see `zh_tokens`; both texts are normalised first, so Traditional and \
Simplified forms, full-width characters and punctuation do not matter). Methods: \
`'bigram_jaccard'` |A∩B| / |A∪B| of the bigram sets; `'bigram_dice'` 2|A∩B| / (|A| + |B|); \
`'bigram_overlap'` |A∩B| / min(|A|, |B|), 1 when one text's bigrams are all in the other; \
`'word_jaccard'` Jaccard of the jieba word sets. Method names are case-insensitive. NULL in \
any argument gives NULL. When either text has no tokens (empty, or punctuation only) the result \
is 0, also when both have none: there is nothing to be similar. A literal unknown method is an \
error at planning time, an unknown method from a column an error when the row is evaluated; \
the message names the valid methods.",
    syntax_example = "text_sim(a, b, method)",
    sql_example = r#"```sql
> SELECT text_sim('负责全市道路交通安全管理工作', '負責全市道路交通安全管理工作', 'bigram_jaccard') AS same,
         text_sim('道路交通', '负责全市道路交通安全管理工作', 'bigram_overlap') AS contained;
+------+-----------+
| same | contained |
+------+-----------+
| 1.0  | 1.0       |
+------+-----------+
```"#,
    argument(name = "a", description = "First text."),
    argument(name = "b", description = "Second text."),
    argument(
        name = "method",
        description = "`'bigram_jaccard'`, `'bigram_dice'`, `'bigram_overlap'` or `'word_jaccard'`."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TextSimFunc {
    signature: Signature,
}

impl Default for TextSimFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl TextSimFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_argument(), string_argument(), string_argument()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for TextSimFunc {
    fn name(&self) -> &str {
        "text_sim"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    /// Checks a literal method while planning.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(Some(ScalarValue::Utf8(Some(method))))
        | Some(Some(ScalarValue::LargeUtf8(Some(method))))
        | Some(Some(ScalarValue::Utf8View(Some(method)))) = args.scalar_arguments.get(2)
        {
            if SimilarityMethod::parse(method).is_none() {
                return plan_err!("{}", SimilarityMethod::unknown(method));
            }
        }
        Ok(Arc::new(Field::new(self.name(), DataType::Float64, true)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [left, right, method] = args.args.as_slice() else {
            return internal_err!("text_sim: expected 3 arguments, got {}", args.args.len());
        };
        let left = StringOperand::from_columnar(left)?;
        let right = StringOperand::from_columnar(right)?;
        let method = StringOperand::from_columnar(method)?;
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(text_sim(&left, &right, &method, rows)?))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// How `text_sim` compares two token sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimilarityMethod {
    BigramJaccard,
    BigramDice,
    BigramOverlap,
    WordJaccard,
}

impl SimilarityMethod {
    const NAMES: &'static str = "'bigram_jaccard', 'bigram_dice', 'bigram_overlap', 'word_jaccard'";

    /// Case-insensitive; `None` for an unknown method.
    pub(crate) fn parse(method: &str) -> Option<Self> {
        match method.trim().to_ascii_lowercase().as_str() {
            "bigram_jaccard" => Some(Self::BigramJaccard),
            "bigram_dice" => Some(Self::BigramDice),
            "bigram_overlap" => Some(Self::BigramOverlap),
            "word_jaccard" => Some(Self::WordJaccard),
            _ => None,
        }
    }

    fn unknown(method: &str) -> String {
        format!(
            "text_sim: unknown method '{method}'; valid methods are {}",
            Self::NAMES
        )
    }

    fn parse_or_error(method: &str) -> Result<Self> {
        match Self::parse(method) {
            Some(method) => Ok(method),
            None => exec_err!("{}", Self::unknown(method)),
        }
    }

    /// The token set this method compares.
    fn tokens(self, text: &str) -> TokenSet {
        let normalized = NormalizedText::new(text);
        match self {
            Self::WordJaccard => TokenSet::Words(normalized.word_set()),
            _ => TokenSet::Bigrams(normalized.bigram_set()),
        }
    }

    /// The score from the set sizes and how many tokens they share.
    fn score(self, left: usize, right: usize, shared: usize) -> f64 {
        if left == 0 || right == 0 {
            return 0.0;
        }
        let (left, right, shared) = (left as f64, right as f64, shared as f64);
        match self {
            Self::BigramJaccard | Self::WordJaccard => shared / (left + right - shared),
            Self::BigramDice => 2.0 * shared / (left + right),
            Self::BigramOverlap => shared / left.min(right),
        }
    }

    fn similarity(self, left: &TokenSet, right: &TokenSet) -> f64 {
        let (left_len, right_len, shared) = match (left, right) {
            (TokenSet::Bigrams(left), TokenSet::Bigrams(right)) => {
                (left.len(), right.len(), shared_count(left, right))
            }
            (TokenSet::Words(left), TokenSet::Words(right)) => {
                (left.len(), right.len(), shared_count(left, right))
            }
            // Both sides are always prepared by the same method.
            _ => (0, 0, 0),
        };
        self.score(left_len, right_len, shared)
    }
}

/// Sorted, distinct tokens of one text.
enum TokenSet {
    Bigrams(Vec<u64>),
    Words(Vec<String>),
}

/// `text_sim` of every row. With a literal method each literal text is
/// tokenised once for the batch.
pub(crate) fn text_sim(
    left: &StringOperand,
    right: &StringOperand,
    method: &StringOperand,
    number_rows: usize,
) -> Result<Float64Array> {
    match method.literal() {
        Some(None) => Ok(Float64Array::new_null(number_rows)),
        Some(Some(method)) => {
            let method = SimilarityMethod::parse_or_error(method)?;
            let scores = map_string_pairs_once_per_text(
                left,
                right,
                number_rows,
                |text| method.tokens(text),
                |left, right| method.similarity(left, right),
            );
            Ok(Float64Array::from(scores))
        }
        None => {
            let mut scores = Vec::with_capacity(number_rows);
            for row in 0..number_rows {
                let (Some(left), Some(right), Some(method)) =
                    (left.get(row), right.get(row), method.get(row))
                else {
                    scores.push(None);
                    continue;
                };
                let method = SimilarityMethod::parse_or_error(method)?;
                scores.push(Some(
                    method.similarity(&method.tokens(left), &method.tokens(right)),
                ));
            }
            Ok(Float64Array::from(scores))
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, StringArray};

    use super::*;

    fn score(left: &str, right: &str, method: &str) -> Result<f64> {
        let result = text_sim(
            &StringOperand::Literal(Some(left.to_string())),
            &StringOperand::Literal(Some(right.to_string())),
            &StringOperand::Literal(Some(method.to_string())),
            1,
        )?;
        Ok(result.value(0))
    }

    #[test]
    fn traditional_and_simplified_are_identical() -> Result<()> {
        for method in [
            "bigram_jaccard",
            "bigram_dice",
            "bigram_overlap",
            "word_jaccard",
        ] {
            let similarity = score(
                "負責全市道路交通安全管理工作",
                "负责全市道路交通安全管理工作。",
                method,
            )?;
            assert_eq!(similarity, 1.0, "{method}");
        }
        Ok(())
    }

    #[test]
    fn bigram_measures() -> Result<()> {
        // 道路交通: 道路 路交 交通; 交通安全: 交通 通安 安全. One shared of 3 + 3.
        assert_eq!(score("道路交通", "交通安全", "bigram_jaccard")?, 1.0 / 5.0);
        assert_eq!(score("道路交通", "交通安全", "bigram_dice")?, 2.0 / 6.0);
        assert_eq!(score("道路交通", "交通安全", "BIGRAM_OVERLAP")?, 1.0 / 3.0);
        assert_eq!(score("交通", "道路交通安全", "bigram_overlap")?, 1.0);
        Ok(())
    }

    #[test]
    fn empty_token_sets_score_zero() -> Result<()> {
        assert_eq!(score("", "", "bigram_jaccard")?, 0.0);
        assert_eq!(score("，。", "", "bigram_dice")?, 0.0);
        assert_eq!(score("交通", "", "bigram_overlap")?, 0.0);
        assert_eq!(score("", "", "word_jaccard")?, 0.0);
        Ok(())
    }

    #[test]
    fn nulls_and_methods_from_a_column() -> Result<()> {
        let left = StringOperand::Utf8(StringArray::from(vec![
            Some("道路交通"),
            None,
            Some("道路交通"),
            Some("道路交通"),
        ]));
        let right = StringOperand::Literal(Some("交通安全".to_string()));
        let methods = StringOperand::Utf8(StringArray::from(vec![
            Some("bigram_dice"),
            Some("bigram_dice"),
            None,
            Some("bigram_jaccard"),
        ]));
        let result = text_sim(&left, &right, &methods, 4)?;
        assert_eq!(result.value(0), 2.0 / 6.0);
        assert!(result.is_null(1));
        assert!(result.is_null(2));
        assert_eq!(result.value(3), 0.2);

        let unknown = StringOperand::Utf8(StringArray::from(vec![Some("cosine")]));
        let Err(error) = text_sim(&left, &right, &unknown, 1) else {
            panic!("an unknown method should fail");
        };
        let message = error.to_string();
        assert!(
            message.contains("'cosine'") && message.contains("'word_jaccard'"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn null_literal_method_gives_nulls() -> Result<()> {
        let text = StringOperand::Literal(Some("交通".to_string()));
        let result = text_sim(&text, &text, &StringOperand::Literal(None), 2)?;
        assert_eq!(result.null_count(), 2);
        Ok(())
    }
}
