//! `jaro_winkler(a, b)`: Jaro–Winkler similarity over Unicode characters.

use std::sync::Arc;

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{evaluate, string_argument, string_pair, StringOperand};

/// Winkler's prefix scale and the longest prefix that earns the bonus.
const PREFIX_SCALE: f64 = 0.1;
const MAX_PREFIX: usize = 4;

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns the Jaro–Winkler similarity of two strings in [0, 1], as Float64, \
over Unicode characters (not bytes; no normalisation, case matters). Jaro: characters match \
when equal and at most ⌊max(|a|, |b|) / 2⌋ − 1 positions apart; with m matches and t half the \
number of matched characters out of order, jaro = (m/|a| + m/|b| + (m − t)/m) / 3, 0 when \
m = 0. Winkler: plus ℓ · 0.1 · (1 − jaro) for a common prefix of ℓ ≤ 4 characters, applied \
whatever the Jaro value (no boost threshold). Two empty strings are equal and give 1; one \
empty string gives 0. NULL in gives NULL.",
    syntax_example = "jaro_winkler(a, b)",
    sql_example = r#"```sql
> SELECT jaro_winkler('MARTHA', 'MARHTA') AS latin, jaro_winkler('交通运输局', '交通局') AS chinese;
+--------------------+--------------------+
| latin              | chinese            |
+--------------------+--------------------+
| 0.9611111111111111 | 0.7511111111111111 |
+--------------------+--------------------+
```"#,
    argument(name = "a", description = "First string."),
    argument(name = "b", description = "Second string.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JaroWinklerFunc {
    signature: Signature,
}

impl Default for JaroWinklerFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl JaroWinklerFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_argument(), string_argument()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for JaroWinklerFunc {
    fn name(&self) -> &str {
        "jaro_winkler"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (left, right) = string_pair("jaro_winkler", &args.args)?;
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(jaro_winkler_rows(&left, &right, rows)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// `jaro_winkler` of every row, with character buffers reused across rows.
pub(crate) fn jaro_winkler_rows(
    left: &StringOperand,
    right: &StringOperand,
    number_rows: usize,
) -> Float64Array {
    let mut buffers = JaroBuffers::default();
    (0..number_rows)
        .map(|row| match (left.get(row), right.get(row)) {
            (Some(left), Some(right)) => Some(buffers.jaro_winkler(left, right)),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Default)]
pub(crate) struct JaroBuffers {
    left: Vec<char>,
    right: Vec<char>,
    left_matched: Vec<bool>,
    right_matched: Vec<bool>,
}

impl JaroBuffers {
    pub(crate) fn jaro_winkler(&mut self, left: &str, right: &str) -> f64 {
        self.left.clear();
        self.left.extend(left.chars());
        self.right.clear();
        self.right.extend(right.chars());
        let jaro = self.jaro();
        let prefix = self
            .left
            .iter()
            .zip(&self.right)
            .take(MAX_PREFIX)
            .take_while(|(left, right)| left == right)
            .count();
        (jaro + prefix as f64 * PREFIX_SCALE * (1.0 - jaro)).min(1.0)
    }

    fn jaro(&mut self) -> f64 {
        let (left, right) = (&self.left, &self.right);
        if left.is_empty() && right.is_empty() {
            return 1.0;
        }
        if left.is_empty() || right.is_empty() {
            return 0.0;
        }
        let window = (left.len().max(right.len()) / 2).saturating_sub(1);
        self.left_matched.clear();
        self.left_matched.resize(left.len(), false);
        self.right_matched.clear();
        self.right_matched.resize(right.len(), false);

        let mut matches = 0usize;
        for (left_index, left_char) in left.iter().enumerate() {
            let start = left_index.saturating_sub(window);
            let end = (left_index + window + 1).min(right.len());
            let partner = (start..end).find(|&right_index| {
                !self.right_matched[right_index] && right[right_index] == *left_char
            });
            if let Some(right_index) = partner {
                self.left_matched[left_index] = true;
                self.right_matched[right_index] = true;
                matches += 1;
            }
        }
        if matches == 0 {
            return 0.0;
        }

        // Matched characters of each side in order; count positions that differ.
        let left_in_order = left
            .iter()
            .zip(&self.left_matched)
            .filter_map(|(character, matched)| matched.then_some(character));
        let right_in_order = right
            .iter()
            .zip(&self.right_matched)
            .filter_map(|(character, matched)| matched.then_some(character));
        let out_of_order = left_in_order
            .zip(right_in_order)
            .filter(|(left, right)| left != right)
            .count();
        let transpositions = (out_of_order / 2) as f64;
        let matches = matches as f64;
        (matches / left.len() as f64
            + matches / right.len() as f64
            + (matches - transpositions) / matches)
            / 3.0
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, StringArray};

    use super::*;

    fn similarity(left: &str, right: &str) -> f64 {
        JaroBuffers::default().jaro_winkler(left, right)
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn textbook_values() {
        // Winkler's examples: MARTHA/MARHTA 0.961, DWAYNE/DUANE 0.84, DIXON/DICKSONX 0.813.
        assert_close(similarity("MARTHA", "MARHTA"), 0.9611111111111111);
        assert_close(similarity("DWAYNE", "DUANE"), 0.84);
        assert_close(similarity("DIXON", "DICKSONX"), 0.8133333333333332);
        assert_eq!(similarity("abc", "abc"), 1.0);
        assert_eq!(similarity("abc", "xyz"), 0.0);
    }

    #[test]
    fn characters_not_bytes() {
        // 交通运输局 / 交通局: match window ⌊5/2⌋ − 1 = 1, so 局 (positions 4
        // and 2) does not match; 2 matches, jaro = (2/5 + 2/3 + 1) / 3;
        // common prefix 交通.
        let jaro: f64 = (2.0 / 5.0 + 2.0 / 3.0 + 1.0) / 3.0;
        assert_close(
            similarity("交通运输局", "交通局"),
            jaro + 2.0 * 0.1 * (1.0 - jaro),
        );
    }

    #[test]
    fn empty_strings_and_nulls() {
        assert_eq!(similarity("", ""), 1.0);
        assert_eq!(similarity("", "a"), 0.0);
        let left = StringOperand::Utf8(StringArray::from(vec![Some("a"), None]));
        let right = StringOperand::Literal(Some("a".to_string()));
        let result = jaro_winkler_rows(&left, &right, 2);
        assert_eq!(result.value(0), 1.0);
        assert!(result.is_null(1));
    }
}
