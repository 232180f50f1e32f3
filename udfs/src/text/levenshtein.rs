//! `levenshtein(a, b [, max_distance])`: edit distance over Unicode
//! characters, optionally bounded.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, internal_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion_macros::user_doc;

use super::support::{
    evaluate, int64_argument, string_argument, string_pair, Int64Operand, StringOperand,
};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns the Levenshtein distance between two strings: the least number of \
single-character insertions, deletions and substitutions turning one into the other, counted \
in Unicode characters (交通局 → 交通运输局 is 2, not 6 bytes). With `max_distance`, the \
distance when it is at most `max_distance`, otherwise exactly `max_distance + 1` (PostgreSQL's \
`levenshtein_less_equal` promises only 'something greater'); the work is then proportional to \
`max_distance` times the shorter length instead of the product of the lengths, so use it to \
filter near matches. A negative `max_distance` gives NULL, as does NULL in any argument. \
Int32, or Int64 when an argument is LargeUtf8. This function replaces DataFusion's built-in \
`levenshtein` of the same name on purpose: the built-in also counts characters and returns \
the same types, so every two-argument call keeps its result; this one adds the bound.",
    syntax_example = "levenshtein(a, b [, max_distance])",
    sql_example = r#"```sql
> SELECT levenshtein('kitten', 'sitting') AS latin, levenshtein('交通局', '交通运输局') AS chinese,
         levenshtein('机构编制委员会', '编办', 2) AS bounded;
+-------+---------+---------+
| latin | chinese | bounded |
+-------+---------+---------+
| 3     | 2       | 3       |
+-------+---------+---------+
```"#,
    argument(name = "a", description = "First string."),
    argument(name = "b", description = "Second string."),
    argument(
        name = "max_distance",
        description = "Optional bound; distances above it are reported as `max_distance + 1`."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LevenshteinFunc {
    signature: Signature,
}

impl Default for LevenshteinFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl LevenshteinFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![string_argument(), string_argument()]),
                    TypeSignature::Coercible(vec![
                        string_argument(),
                        string_argument(),
                        int64_argument(),
                    ]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for LevenshteinFunc {
    fn name(&self) -> &str {
        "levenshtein"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// As the built-in: Int64 when a string argument is LargeUtf8.
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let large = arg_types
            .iter()
            .take(2)
            .any(|data_type| data_type == &DataType::LargeUtf8);
        Ok(if large {
            DataType::Int64
        } else {
            DataType::Int32
        })
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (left, right) = string_pair("levenshtein", &args.args)?;
        let bound = match args.args.as_slice() {
            [_, _] => None,
            [_, _, bound] => Some(Int64Operand::from_columnar(bound)?),
            other => {
                return internal_err!(
                    "levenshtein: expected 2 or 3 arguments, got {}",
                    other.len()
                )
            }
        };
        let large = args.return_field.data_type() == &DataType::Int64;
        evaluate(&args.args, args.number_rows, |rows| {
            let distances = levenshtein_rows(&left, &right, bound.as_ref(), rows);
            if large {
                return Ok(Arc::new(distances.into_iter().collect::<Int64Array>()) as ArrayRef);
            }
            let distances = distances
                .into_iter()
                .map(|distance| distance.map(i32::try_from).transpose())
                .collect::<Result<Int32Array, _>>();
            match distances {
                Ok(distances) => Ok(Arc::new(distances) as ArrayRef),
                Err(_) => exec_err!("levenshtein: distance does not fit in Int32"),
            }
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Distance of every row; NULL for a NULL argument or a negative bound.
pub(crate) fn levenshtein_rows(
    left: &StringOperand,
    right: &StringOperand,
    bound: Option<&Int64Operand>,
    number_rows: usize,
) -> Vec<Option<i64>> {
    let mut buffers = LevenshteinBuffers::default();
    (0..number_rows)
        .map(|row| {
            let (left, right) = (left.get(row)?, right.get(row)?);
            let bound = match bound {
                Some(bound) => Some(usize::try_from(bound.get(row)?).ok()?),
                None => None,
            };
            i64::try_from(buffers.distance(left, right, bound)).ok()
        })
        .collect()
}

/// Character and row buffers reused from row to row.
#[derive(Debug, Default)]
pub(crate) struct LevenshteinBuffers {
    left: Vec<char>,
    right: Vec<char>,
    row: Vec<usize>,
}

impl LevenshteinBuffers {
    /// The distance, or `bound + 1` when it exceeds `bound`.
    pub(crate) fn distance(&mut self, left: &str, right: &str, bound: Option<usize>) -> usize {
        self.left.clear();
        self.left.extend(left.chars());
        self.right.clear();
        self.right.extend(right.chars());

        // A common prefix and suffix cost nothing.
        let prefix = self
            .left
            .iter()
            .zip(&self.right)
            .take_while(|(left, right)| left == right)
            .count();
        let suffix = self.left[prefix..]
            .iter()
            .rev()
            .zip(self.right[prefix..].iter().rev())
            .take_while(|(left, right)| left == right)
            .count();
        let left = &self.left[prefix..self.left.len() - suffix];
        let right = &self.right[prefix..self.right.len() - suffix];
        let (short, long) = if left.len() <= right.len() {
            (left, right)
        } else {
            (right, left)
        };

        // Beyond the longer length a bound changes nothing.
        let limit = bound.map_or(long.len(), |bound| bound.min(long.len()));
        let exceeded = limit + 1;
        if long.len() - short.len() > limit {
            return exceeded;
        }
        if short.is_empty() {
            return long.len();
        }
        banded_distance(short, long, limit, &mut self.row)
    }
}

/// Wagner–Fischer over one row, restricted to the diagonal band
/// |i − j| ≤ `limit` (Ukkonen): a cell outside the band costs more than
/// `limit`, and any value above `limit` stands for "exceeded". Requires
/// `short.len() <= long.len()` and `long.len() - short.len() <= limit`.
fn banded_distance(short: &[char], long: &[char], limit: usize, row: &mut Vec<usize>) -> usize {
    let exceeded = limit + 1;
    // row[j] = distance between the first i characters of `short` and the
    // first j of `long`; cells never written keep j, which is > limit
    // wherever they lie outside the band.
    row.clear();
    row.extend(0..=long.len());
    for (i, short_char) in short.iter().enumerate() {
        let i = i + 1;
        let first = i.saturating_sub(limit).max(1);
        let last = (i + limit).min(long.len());
        let mut diagonal = row[first - 1];
        let mut left = if first == 1 {
            row[0] = i;
            i
        } else {
            exceeded
        };
        let mut row_minimum = exceeded;
        for j in first..=last {
            let above = row[j];
            let substitution = diagonal + usize::from(*short_char != long[j - 1]);
            let value = substitution.min(above + 1).min(left + 1);
            diagonal = above;
            row[j] = value;
            left = value;
            row_minimum = row_minimum.min(value);
        }
        if row_minimum > limit {
            return exceeded;
        }
    }
    row[long.len()].min(exceeded)
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array as Bounds;
    use arrow::array::StringArray;

    use super::*;

    fn distance(left: &str, right: &str, bound: Option<usize>) -> usize {
        LevenshteinBuffers::default().distance(left, right, bound)
    }

    /// Plain full-matrix Levenshtein, to check the banded one against.
    fn reference(left: &str, right: &str) -> usize {
        let left: Vec<char> = left.chars().collect();
        let right: Vec<char> = right.chars().collect();
        let mut previous: Vec<usize> = (0..=right.len()).collect();
        for (i, left_char) in left.iter().enumerate() {
            let mut current = vec![i + 1; right.len() + 1];
            for (j, right_char) in right.iter().enumerate() {
                current[j + 1] = (previous[j] + usize::from(left_char != right_char))
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1);
            }
            previous = current;
        }
        previous[right.len()]
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(distance("kitten", "sitting", None), 3);
        assert_eq!(distance("交通局", "交通运输局", None), 2);
        assert_eq!(distance("负责", "負責", None), 2);
        assert_eq!(distance("", "编制", None), 2);
        assert_eq!(distance("", "", None), 0);
    }

    #[test]
    fn bound_reports_bound_plus_one() {
        assert_eq!(distance("kitten", "sitting", Some(3)), 3);
        assert_eq!(distance("kitten", "sitting", Some(2)), 3);
        assert_eq!(distance("kitten", "sitting", Some(0)), 1);
        assert_eq!(distance("机构编制委员会", "编办", Some(2)), 3);
        assert_eq!(distance("same", "same", Some(0)), 0);
        assert_eq!(distance("abc", "abc", Some(usize::MAX)), 0);
        assert_eq!(distance("abc", "xyz", Some(usize::MAX)), 3);
    }

    #[test]
    fn banded_agrees_with_full_matrix() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "kitten",
            "sitting",
            "saturday",
            "sunday",
            "负责全市交通",
            "全市交通负责",
            "组织实施道路交通秩序管理",
            "道路交通",
            "abcabcabc",
            "cabcabcab",
        ];
        for left in words {
            for right in words {
                let exact = reference(left, right);
                assert_eq!(distance(left, right, None), exact, "{left} / {right}");
                for bound in 0..=12 {
                    let expected = if exact <= bound { exact } else { bound + 1 };
                    assert_eq!(
                        distance(left, right, Some(bound)),
                        expected,
                        "{left} / {right} bound {bound}"
                    );
                }
            }
        }
    }

    #[test]
    fn nulls_and_negative_bounds() {
        let left = StringOperand::Utf8(StringArray::from(vec![
            Some("kitten"),
            None,
            Some("kitten"),
            Some("kitten"),
        ]));
        let right = StringOperand::Literal(Some("sitting".to_string()));
        let bounds = Int64Operand::Column(Bounds::from(vec![Some(1), Some(1), Some(-1), None]));
        assert_eq!(
            levenshtein_rows(&left, &right, Some(&bounds), 4),
            [Some(2), None, None, None]
        );
        assert_eq!(levenshtein_rows(&left, &right, None, 2), [Some(3), None]);
    }
}
