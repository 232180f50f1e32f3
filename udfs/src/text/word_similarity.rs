//! `word_similarity(a, b)`: pg_trgm's similarity of `a` to the best
//! matching stretch of `b`.

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{evaluate, string_argument, string_pair, StringOperand};
use super::trigram::{word_similarity, TrigramBuffers};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns the greatest trigram similarity between the trigram set of `a` and \
any continuous stretch of the ordered trigrams of `b`, in [0, 1], as Float32 — the same value \
as PostgreSQL 15's pg_trgm `word_similarity(a, b)` in a UTF-8 database. Not symmetric: it asks \
how well `a` occurs somewhere in `b`. The stretch need not start or end at a word boundary \
(see `strict_word_similarity`). Words, lowercasing, padding and hashing as in `similarity`. \
0 when either text has no word; NULL in gives NULL.",
    syntax_example = "word_similarity(a, b)",
    sql_example = r#"```sql
> SELECT word_similarity('word', 'two words');
+-------------------------------------------------+
| word_similarity(Utf8("word"),Utf8("two words")) |
+-------------------------------------------------+
| 0.8                                             |
+-------------------------------------------------+
```"#,
    argument(name = "a", description = "Text looked for."),
    argument(name = "b", description = "Text looked in.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WordSimilarityFunc {
    signature: Signature,
}

impl Default for WordSimilarityFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl WordSimilarityFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_argument(), string_argument()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for WordSimilarityFunc {
    fn name(&self) -> &str {
        "word_similarity"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float32)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (pattern, text) = string_pair("word_similarity", &args.args)?;
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(word_similarities(&pattern, &text, rows, false)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// `word_similarity` (or, `strict`, `strict_word_similarity`) of every row.
pub(crate) fn word_similarities(
    pattern: &StringOperand,
    text: &StringOperand,
    number_rows: usize,
    strict: bool,
) -> Float32Array {
    let mut buffers = TrigramBuffers::default();
    (0..number_rows)
        .map(|row| match (pattern.get(row), text.get(row)) {
            (Some(pattern), Some(text)) => {
                Some(word_similarity(pattern, text, strict, &mut buffers))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use arrow::array::{Array, StringArray};

    use super::*;

    /// `(a, b, word_similarity(a, b))` from PostgreSQL 15.18 with pg_trgm,
    /// UTF8 database, LC_CTYPE C.UTF-8 (tests/pg_trgm_reference.sql,
    /// `SELECT word_similarity(a, b)::text ...`), exact float4 values.
    pub(crate) const PG_WORD_SIMILARITY: [(&str, &str, f32); 18] = [
        ("word", "two words", 0.8),
        ("Hello, World!", "hello world", 1.0),
        ("PostgreSQL", "postgres", 0.72727275),
        (
            "负责全市道路交通安全管理工作",
            "组织实施道路交通秩序管理",
            0.13333334,
        ),
        (
            "负责全市档案监督管理工作",
            "负责全市价格监督管理工作",
            0.5294118,
        ),
        ("", "", 0.0),
        ("", "abc", 0.0),
        ("a", "a", 1.0),
        ("café crème", "CAFÉ creme", 0.6),
        ("道路交通 safety", "交通 Safety管理", 0.5833333),
        ("İstanbul", "istanbul", 1.0),
        ("123-456", "123 456", 1.0),
        ("...!!!", "???", 0.0),
        (
            "負責全市道路交通安全管理工作",
            "负责全市道路交通安全管理工作",
            0.73333335,
        ),
        ("kitten sitting", "sitting kitten", 1.0),
        ("交通", "负责全市道路交通安全管理工作", 0.0),
        ("ab", "abc", 0.6666667),
        ("机构编制", "机构编制委员会办公室 机构 编制", 0.8),
    ];

    #[test]
    fn same_numbers_as_postgres() {
        let pattern =
            StringOperand::Utf8(PG_WORD_SIMILARITY.iter().map(|row| Some(row.0)).collect());
        let text = StringOperand::Utf8(PG_WORD_SIMILARITY.iter().map(|row| Some(row.1)).collect());
        let result = word_similarities(&pattern, &text, PG_WORD_SIMILARITY.len(), false);
        for (row, (a, b, expected)) in PG_WORD_SIMILARITY.iter().enumerate() {
            assert_eq!(
                result.value(row),
                *expected,
                "word_similarity({a:?}, {b:?})"
            );
        }
    }

    #[test]
    fn not_symmetric_and_nulls() {
        let pattern = StringOperand::Utf8(StringArray::from(vec![Some("two words"), None]));
        let text = StringOperand::Literal(Some("word".to_string()));
        let result = word_similarities(&pattern, &text, 2, false);
        // The whole of 'two words' is not in 'word': 4 of its 11 trigrams are.
        assert!(result.value(0) < 0.8);
        assert!(result.is_null(1));
    }
}
