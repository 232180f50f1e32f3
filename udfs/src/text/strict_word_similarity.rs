//! `strict_word_similarity(a, b)`: pg_trgm's similarity of `a` to the best
//! matching run of whole words of `b`.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{evaluate, string_argument, string_pair};
use super::word_similarity::word_similarities;

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Like `word_similarity`, but the stretch of `b` compared with `a` must start \
at the beginning of a word and end at the end of a word, in [0, 1], as Float32 — the same \
value as PostgreSQL 15's pg_trgm `strict_word_similarity(a, b)` in a UTF-8 database. 0 when \
either text has no word; NULL in gives NULL.",
    syntax_example = "strict_word_similarity(a, b)",
    sql_example = r#"```sql
> SELECT strict_word_similarity('word', 'two words');
+--------------------------------------------------------+
| strict_word_similarity(Utf8("word"),Utf8("two words")) |
+--------------------------------------------------------+
| 0.5714286                                              |
+--------------------------------------------------------+
```"#,
    argument(name = "a", description = "Text looked for."),
    argument(name = "b", description = "Text looked in.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StrictWordSimilarityFunc {
    signature: Signature,
}

impl Default for StrictWordSimilarityFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl StrictWordSimilarityFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_argument(), string_argument()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for StrictWordSimilarityFunc {
    fn name(&self) -> &str {
        "strict_word_similarity"
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
        let (pattern, text) = string_pair("strict_word_similarity", &args.args)?;
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(word_similarities(&pattern, &text, rows, true)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use crate::text::support::StringOperand;

    use super::*;

    /// `(a, b, strict_word_similarity(a, b))` from PostgreSQL 15.18 with
    /// pg_trgm, UTF8 database, LC_CTYPE C.UTF-8
    /// (tests/pg_trgm_reference.sql, `SELECT strict_word_similarity(a, b)::text ...`),
    /// exact float4 values.
    const PG_STRICT_WORD_SIMILARITY: [(&str, &str, f32); 18] = [
        ("word", "two words", 0.5714286),
        ("Hello, World!", "hello world", 1.0),
        ("PostgreSQL", "postgres", 0.6666667),
        (
            "负责全市道路交通安全管理工作",
            "组织实施道路交通秩序管理",
            0.07692308,
        ),
        (
            "负责全市档案监督管理工作",
            "负责全市价格监督管理工作",
            0.5294118,
        ),
        ("", "", 0.0),
        ("", "abc", 0.0),
        ("a", "a", 1.0),
        ("café crème", "CAFÉ creme", 0.53846157),
        ("道路交通 safety", "交通 Safety管理", 0.4117647),
        ("İstanbul", "istanbul", 1.0),
        ("123-456", "123 456", 1.0),
        ("...!!!", "???", 0.0),
        (
            "負責全市道路交通安全管理工作",
            "负责全市道路交通安全管理工作",
            0.57894737,
        ),
        ("kitten sitting", "sitting kitten", 1.0),
        ("交通", "负责全市道路交通安全管理工作", 0.0),
        ("ab", "abc", 0.4),
        ("机构编制", "机构编制委员会办公室 机构 编制", 0.375),
    ];

    #[test]
    fn same_numbers_as_postgres() {
        let rows = &PG_STRICT_WORD_SIMILARITY;
        let pattern = StringOperand::Utf8(rows.iter().map(|row| Some(row.0)).collect());
        let text = StringOperand::Utf8(rows.iter().map(|row| Some(row.1)).collect());
        let result = word_similarities(&pattern, &text, rows.len(), true);
        for (row, (a, b, expected)) in rows.iter().enumerate() {
            assert_eq!(
                result.value(row),
                *expected,
                "strict_word_similarity({a:?}, {b:?})"
            );
        }
    }
}
