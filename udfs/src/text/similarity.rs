//! `similarity(a, b)`: pg_trgm's trigram similarity.

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{evaluate, map_string_pairs, string_argument, string_pair, StringOperand};
use super::trigram::{set_similarity, trigram_set, TrigramBuffers};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns how similar two texts are by their trigrams, in [0, 1], as Float32 \
(PostgreSQL `real`), with the same value as PostgreSQL 15's pg_trgm `similarity` in a UTF-8 \
database: the texts are split into words (runs of letters and digits; CJK characters are \
letters), each word lowercased and padded with two spaces before and one after, and the \
result is the number of distinct trigrams (three consecutive characters) the texts share \
divided by the number of distinct trigrams in either. Trigrams containing non-ASCII characters \
are compared by a 3-byte hash, as PostgreSQL does. 0 when either text has no word; NULL in \
gives NULL. For Chinese duty texts prefer `text_sim` or `func_similarity`: each Chinese clause \
is usually one long 'word', so only its exact 3-character stretches count.",
    syntax_example = "similarity(a, b)",
    sql_example = r#"```sql
> SELECT similarity('PostgreSQL', 'postgres'), similarity('负责全市道路交通安全管理工作', '组织实施道路交通秩序管理');
+-------------------------------------------------+-----------------------------------------------------------------------------------+
| similarity(Utf8("PostgreSQL"),Utf8("postgres")) | similarity(Utf8("负责全市道路交通安全管理工作"),Utf8("组织实施道路交通秩序管理")) |
+-------------------------------------------------+-----------------------------------------------------------------------------------+
| 0.6666667                                       | 0.07692308                                                                        |
+-------------------------------------------------+-----------------------------------------------------------------------------------+
```"#,
    argument(name = "a", description = "First text."),
    argument(name = "b", description = "Second text.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SimilarityFunc {
    signature: Signature,
}

impl Default for SimilarityFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl SimilarityFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_argument(), string_argument()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for SimilarityFunc {
    fn name(&self) -> &str {
        "similarity"
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
        let (left, right) = string_pair("similarity", &args.args)?;
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(similarity(&left, &right, rows)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// `similarity` of every row; a literal side's trigrams are built once.
pub(crate) fn similarity(
    left: &StringOperand,
    right: &StringOperand,
    number_rows: usize,
) -> Float32Array {
    let mut buffers = TrigramBuffers::default();
    Float32Array::from(map_string_pairs(
        left,
        right,
        number_rows,
        |text| trigram_set(text, &mut buffers),
        |left, right| set_similarity(left, right),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use arrow::array::{Array, StringArray};

    use super::*;

    /// `(a, b, similarity(a, b))` from PostgreSQL 15.18 with pg_trgm, UTF8
    /// database, LC_CTYPE C.UTF-8: the first query of
    /// tests/pg_trgm_reference.sql (`SELECT similarity(a, b)::text ...`),
    /// printed as shortest round-trip float4, so the literals are the exact
    /// f32 values.
    pub(crate) const PG_SIMILARITY: [(&str, &str, f32); 18] = [
        ("word", "two words", 0.36363637),
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
        ("机构编制", "机构编制委员会办公室 机构 编制", 0.33333334),
    ];

    #[test]
    fn same_numbers_as_postgres() {
        let left = StringOperand::Utf8(PG_SIMILARITY.iter().map(|row| Some(row.0)).collect());
        let right = StringOperand::Utf8(PG_SIMILARITY.iter().map(|row| Some(row.1)).collect());
        let result = similarity(&left, &right, PG_SIMILARITY.len());
        for (row, (a, b, expected)) in PG_SIMILARITY.iter().enumerate() {
            assert_eq!(result.value(row), *expected, "similarity({a:?}, {b:?})");
        }
    }

    #[test]
    fn literal_against_column_with_nulls() {
        let left = StringOperand::Literal(Some("PostgreSQL".to_string()));
        let right = StringOperand::Utf8(StringArray::from(vec![Some("postgres"), None]));
        let result = similarity(&left, &right, 2);
        assert_eq!(result.value(0), 0.6666667);
        assert!(result.is_null(1));
        let result = similarity(&StringOperand::Literal(None), &right, 2);
        assert_eq!(result.null_count(), 2);
    }
}
